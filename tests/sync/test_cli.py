"""`flask sync list|run|capabilities` against a real receiver."""

import orjson

from integration.app import create_app
from integration.settings import Settings
from tests.sync.conftest import assert_mirrors, load


def test_sync_cli(database_url, tmp_path, receiver):
    path = tmp_path / "d.toml"
    path.write_text(
        f'[[destination]]\nname = "test-ehr"\nkind = "ehr"\nbase_url = "{receiver.url}"\n'
        '[destination.auth]\ntype = "none"\n[destination.schedule]\nevery_seconds = 60\n'
    )
    app = create_app(
        Settings.load(environ={}, database_url=database_url, log_level="WARNING", destinations_file=str(path))
    )
    db = app.extensions["horizon.db"]
    load(db, app.extensions["horizon.mapping"], patients=1)
    runner = app.test_cli_runner()
    assert "test-ehr\tehr\tenabled\thttp://127.0.0.1" in runner.invoke(args=["sync", "list"]).output
    result = runner.invoke(args=["sync", "run", "test-ehr"])
    assert result.exit_code == 0, result.output
    run = orjson.loads(result.output)
    assert run["state"] == "done" and run["counts"]["sent"] > 0
    assert_mirrors(receiver, db)
    facts = orjson.loads(runner.invoke(args=["sync", "capabilities", "test-ehr"]).output)
    assert facts["transaction"] is True
    assert runner.invoke(args=["sync", "run", "nowhere"]).exit_code != 0
    db.engine.dispose()
