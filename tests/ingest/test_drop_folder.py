"""The drop folder takes finished exports, files them by outcome with a PHI-free report, and audits each."""

from __future__ import annotations

import os
import time
from dataclasses import replace

import orjson
from sqlalchemy import func, select

from integration.ingest import drop_folder, synthetic
from integration.jobs import jobs_for, poll_drop_folder
from integration.store.schema import audit_event, clinic_record
from tests.ingest.test_readers import EXTERNAL_ENTITY, _pairs, to_csv, to_xml


def _age(path, seconds: float) -> None:
    then = time.time() - seconds
    for p in [path, *(path.rglob("*") if path.is_dir() else [])]:
        os.utime(p, (then, then))


def _records(db) -> int:
    with db.reader() as conn:
        return conn.execute(select(func.count()).select_from(clinic_record)).scalar_one()


def _reports(root, folder: str) -> list[dict]:
    return [orjson.loads(p.read_bytes()) for p in sorted((root / folder).glob("*.report.json"))]


def _drop_app(app, root):
    app.config["HORIZON_SETTINGS"] = replace(
        app.config["HORIZON_SETTINGS"], drop_folder=str(root), drop_folder_min_age_seconds=5
    )
    return app


def test_only_finished_entries_are_ready(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for name in ("a.xml", "b.xml.part", ".c.xml", "d.xml.tmp", "fresh.xml"):
        (inbox / name).write_bytes(b"<x/>")
    folder = inbox / "csv-batch"
    folder.mkdir()
    (folder / "patients.csv").write_bytes(b"id\r\n")
    for name in ("a.xml", "b.xml.part", ".c.xml", "d.xml.tmp", "csv-batch"):
        _age(inbox / name, 60)
    (folder / "sessions.csv").write_bytes(b"id\r\n")  # the folder is still being filled
    assert [p.name for p in drop_folder.ready_entries(inbox, 10, time.time())] == ["a.xml"]
    _age(folder, 30)
    ready = drop_folder.ready_entries(inbox, 10, time.time())
    assert [p.name for p in ready] == ["a.xml", "csv-batch"]  # oldest first


def test_exports_are_ingested_filed_and_audited(app, db, tmp_path):
    root = tmp_path / "drop"
    _drop_app(app, root)
    assert "drop-folder" in {spec.id for spec in jobs_for(app)}
    pairs = _pairs(synthetic.batch(seed=21, n_patients=2, sessions_per_patient=2))
    drop_folder.prepare(root)
    (root / "inbox" / "export.xml").write_bytes(to_xml(pairs))
    (root / "inbox" / "later.xml.part").write_bytes(to_xml(pairs))
    _age(root / "inbox" / "export.xml", 60)

    assert poll_drop_folder(app) == {"taken": 1, "by_folder": {"done": 1}}
    assert _records(db) == len(pairs)
    (report,) = _reports(root, "done")
    assert report["counts"] == {"accepted": len(pairs), "unchanged": 0, "rejected": 0}
    assert [p.name for p in (root / "inbox").iterdir()] == ["later.xml.part"]
    assert os.stat(root / "done").st_mode & 0o777 == 0o700

    # The same export again (e.g. after a crash before it was moved) changes nothing.
    (root / "inbox" / "later.xml.part").rename(root / "inbox" / "again.xml")
    _age(root / "inbox" / "again.xml", 60)
    assert poll_drop_folder(app)["by_folder"] == {"done": 1}
    assert _records(db) == len(pairs)
    assert _reports(root, "done")[1]["counts"]["unchanged"] == len(pairs)
    with db.reader() as conn:
        rows = conn.execute(select(audit_event).where(audit_event.c.action == "intake.drop-folder")).all()
    assert [(r.actor, r.outcome) for r in rows] == [("drop-folder", 200), ("drop-folder", 200)]


def test_a_bad_record_is_rejected_by_rule_and_the_rest_stored(app, db, tmp_path):
    root = tmp_path / "drop"
    _drop_app(app, root)
    pairs = _pairs(synthetic.batch(seed=22, n_patients=2, sessions_per_patient=1))
    session = next(r for k, r in pairs if k == "session")
    bad = dict(session, weight_kg=999, note="PRIVATE NOTE")
    pairs = [(k, bad if r is session else r) for k, r in pairs]
    drop_folder.prepare(root)
    batch = root / "inbox" / "nightly"
    batch.mkdir()
    for name, data in to_csv(pairs).items():
        (batch / name).write_bytes(data)
    _age(batch, 60)

    assert poll_drop_folder(app)["by_folder"] == {"rejected": 1}
    assert _records(db) == len(pairs) - 1
    (report,) = _reports(root, "rejected")
    expected = {"kind": "session", "id": bad["id"], "path": "weight_kg", "rule": "range"}
    assert report["rejections"] == [expected]
    text = (next((root / "rejected").glob("*.report.json"))).read_text()
    assert "PRIVATE" not in text and "999" not in text
    assert (next(p for p in (root / "rejected").iterdir() if p.is_dir()) / "sessions.csv").exists()


def test_an_unreadable_file_is_failed_and_stores_nothing(app, db, tmp_path):
    root = tmp_path / "drop"
    _drop_app(app, root)
    drop_folder.prepare(root)
    (root / "inbox" / "evil.xml").write_bytes(EXTERNAL_ENTITY)
    (root / "inbox" / "notes.txt").write_text("hello")
    _age(root / "inbox" / "evil.xml", 60)
    _age(root / "inbox" / "notes.txt", 60)

    assert poll_drop_folder(app)["by_folder"] == {"failed": 2}
    assert _records(db) == 0
    errors = sorted(r["error"] for r in _reports(root, "failed"))
    assert "evil.xml" in errors[0] and "entities" in errors[0]
    assert "notes.txt" in errors[1] and "neither" in errors[1]
    with db.reader() as conn:
        outcomes = conn.execute(
            select(audit_event.c.outcome).where(audit_event.c.action == "intake.drop-folder")
        ).scalars()
        assert sorted(outcomes) == [422, 422]


def test_no_drop_folder_no_job(app):
    assert "drop-folder" not in {spec.id for spec in jobs_for(app)}
