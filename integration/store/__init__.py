"""The durable store: schema, migrations, engine and repositories (SQLite or PostgreSQL)."""
