"""The search index is written with each version, dropped for deletions, and rebuilt for old data."""

import copy
from datetime import UTC, datetime

import orjson
from sqlalchemy import func, select, text

from integration.ingest import synthetic
from integration.store import migrate
from integration.store.db import make_engine
from integration.store.schema import (
    fhir_resource,
    fhir_search_date,
    fhir_search_reference,
    fhir_search_string,
    fhir_search_token,
)
from integration.store.search_index import SearchIndex

TABLES = (fhir_search_token, fhir_search_string, fhir_search_date, fhir_search_reference)


def _snapshot(db):
    with db.reader() as conn:
        return {t.name: sorted(tuple(str(v) for v in row) for row in conn.execute(select(t))) for t in TABLES}


def _send(client, clinic_headers, batch):
    response = client.post(
        "/api/v1/batch", data=orjson.dumps(batch), headers=clinic_headers, content_type="application/json"
    )
    assert response.json["summary"]["rejected"] == 0


def _rows_of(db, resource_id):
    with db.reader() as conn:
        return sum(
            conn.execute(
                select(func.count()).select_from(t).where(t.c.resource_id == resource_id)
            ).scalar_one()
            for t in TABLES
        )


def test_intake_indexes_updates_and_deletions(client, db, clinic_headers):
    batch = synthetic.batch(seed=5, n_patients=1, sessions_per_patient=1)
    _send(client, clinic_headers, batch)
    snapshot = _snapshot(db)
    assert all(snapshot[t.name] for t in TABLES)
    with db.reader() as conn:
        patient = conn.execute(
            select(fhir_resource.c.id).where(fhir_resource.c.resource_type == "Patient")
        ).scalar_one()
    assert ("Patient", patient, "family") in {r[:3] for r in snapshot["fhir_search_string"]}

    session = copy.deepcopy(batch["sessions"][0])
    dropped = session["vitals"].pop()
    client.put(f"/api/v1/sessions/{session['id']}", json=session, headers=clinic_headers)
    with db.reader() as conn:
        gone = (
            conn.execute(select(fhir_resource.c.id).where(fhir_resource.c.deleted.is_(True))).scalars().all()
        )
    assert gone and dropped and all(_rows_of(db, rid) == 0 for rid in gone)

    # An update replaces the rows rather than adding to them.
    patient_record = {**batch["patients"][0], "family": "Renamed"}
    client.put(f"/api/v1/patients/{patient_record['id']}", json=patient_record, headers=clinic_headers)
    with db.reader() as conn:
        families = (
            conn.execute(
                select(fhir_search_string.c.value).where(
                    fhir_search_string.c.resource_id == patient, fhir_search_string.c.param == "family"
                )
            )
            .scalars()
            .all()
        )
    assert families == ["renamed"]


def test_rebuild_gives_the_rows_intake_wrote(client, db, clinic_headers):
    _send(client, clinic_headers, synthetic.batch(seed=6, n_patients=2, sessions_per_patient=1))
    before = _snapshot(db)
    with db.writer() as conn:
        for t in TABLES:
            conn.execute(t.delete())
        count = SearchIndex(conn).rebuild()
    with db.reader() as conn:
        live = conn.execute(
            select(func.count()).select_from(fhir_resource).where(fhir_resource.c.deleted.is_(False))
        ).scalar_one()
    assert count == live and _snapshot(db) == before


def test_cli_reindex(app, client, db, clinic_headers):
    _send(client, clinic_headers, synthetic.batch(seed=7, n_patients=1, sessions_per_patient=1))
    before = _snapshot(db)
    with db.writer() as conn:
        conn.execute(fhir_search_token.delete())
    result = app.test_cli_runner().invoke(args=["fhir", "reindex"])
    assert result.exit_code == 0 and "rebuilt from" in result.output
    assert _snapshot(db) == before


def test_the_migration_backfills_resources_stored_before_it(database_url, tmp_path):
    """Resources written at revision 0003 (no index yet) are indexed by upgrading to 0004."""
    engine = make_engine(database_url)
    with engine.begin() as conn:
        for t in TABLES:
            conn.execute(text(f"DROP TABLE {t.name}"))
        conn.execute(text("DROP INDEX ix_change_feed_resource_type_seq"))
        conn.execute(text("UPDATE alembic_version SET version_num = '0003'"))
        conn.execute(
            fhir_resource.insert(),
            [
                {
                    "resource_type": "Patient",
                    "id": "old-1",
                    "version_id": 1,
                    "last_updated": datetime.now(UTC),
                    "patient_id": "old-1",
                    "deleted": False,
                    "content_hash": "h",
                    "content": orjson.dumps(
                        {"resourceType": "Patient", "id": "old-1", "name": [{"family": "Before"}]}
                    ).decode(),
                }
            ],
        )
    migrate.upgrade(engine, "0004")
    with engine.begin() as conn:  # later revisions' tables were never dropped: back at head
        conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": migrate.head_revision()})
    with engine.connect() as conn:
        rows = conn.execute(
            select(fhir_search_string.c.param, fhir_search_string.c.value).where(
                fhir_search_string.c.resource_id == "old-1"
            )
        ).all()
    engine.dispose()
    assert sorted(rows) == [("family", "before"), ("name", "before")]
