"""Referrer Groups kept by intake: accepted, changed and moved referrals; backfill; CLI; change feed."""

import copy

import orjson
from sqlalchemy import delete, select

from integration.fhir_api.compartment import group_members
from integration.ingest import synthetic
from integration.ingest.groups import backfill_groups
from integration.ingest.service import COLLECTIONS, ingest
from integration.store.resources import ResourceRepository
from integration.store.schema import (
    change_feed,
    fhir_resource,
    fhir_resource_source,
    fhir_resource_version,
    referral_link,
)
from mappings.group import referrer_group_id
from mappings.ids import resource_id


def _load(db, ctx, batch):
    pairs = [(kind, r) for collection, kind in COLLECTIONS.items() for r in batch.get(collection, [])]
    outcomes = ingest(db, pairs, ctx=ctx, source="api")
    assert all(o.status != "rejected" for o in outcomes), [o.as_dict() for o in outcomes if o.errors]
    return outcomes


def _members(db, practitioner_id):
    with db.reader() as conn:
        return group_members(conn, referrer_group_id(practitioner_id))


def _expected(batch, practitioner_id):
    return frozenset(
        resource_id("patient", r["patient_id"])
        for r in batch["referrals"]
        if r["practitioner_id"] == practitioner_id
    )


def _group_versions(db, practitioner_id):
    with db.reader() as conn:
        return [
            v.version_id
            for v in ResourceRepository(conn).history("Group", referrer_group_id(practitioner_id))
        ]


def test_intake_builds_one_group_per_referrer(db, ctx):
    batch = synthetic.batch(seed=5, n_patients=12, sessions_per_patient=0)
    _load(db, ctx, batch)
    referrers = {r["practitioner_id"] for r in batch["referrals"]}
    assert len(referrers) > 1
    for p in referrers:
        assert _members(db, p) == _expected(batch, p)
    with db.reader() as conn:
        stored = conn.execute(select(fhir_resource.c.id).where(fhir_resource.c.resource_type == "Group"))
        assert {row.id for row in stored} == {referrer_group_id(p) for p in referrers}
        feed = conn.execute(select(change_feed.c.resource_id).where(change_feed.c.resource_type == "Group"))
        assert sorted(row.resource_id for row in feed) == sorted(referrer_group_id(p) for p in referrers)


def test_changed_and_moved_referrals_update_both_groups(db, ctx):
    batch = synthetic.batch(seed=5, n_patients=12, sessions_per_patient=0)
    _load(db, ctx, batch)
    moved = copy.deepcopy(batch["referrals"][0])
    old, new = (
        moved["practitioner_id"],
        next(
            r["practitioner_id"]
            for r in batch["referrals"]
            if r["practitioner_id"] != moved["practitioner_id"]
        ),
    )
    before_old, before_new = _group_versions(db, old), _group_versions(db, new)
    # A changed note keeps the members: no new Group version.
    noted = {**moved, "note": "Updated note."}
    assert _load(db, ctx, {"referrals": [noted]})[0].status == "accepted"
    assert _group_versions(db, old) == before_old
    moved["practitioner_id"] = new
    _load(db, ctx, {"referrals": [moved]})
    batch["referrals"][0] = moved
    assert _members(db, old) == _expected(batch, old)
    assert _members(db, new) == _expected(batch, new)
    assert resource_id("patient", moved["patient_id"]) in _members(db, new)
    assert len(_group_versions(db, new)) == len(before_new) + 1
    # The old referrer keeps the patient only if another of its referrals names them.
    assert len(_group_versions(db, old)) == len(before_old) + 1


def test_a_referral_moved_to_another_patient_updates_the_groups(db, ctx):
    """A wrong-patient correction of a referral: the referrer's Group drops the first patient (unless another
    referral names them) and gains the new one; moved to another referrer too, both Groups follow."""
    batch = synthetic.batch(seed=5, n_patients=12, sessions_per_patient=0)
    _load(db, ctx, batch)
    moved = copy.deepcopy(batch["referrals"][0])
    first_patient = moved["patient_id"]
    other = next(
        r
        for r in batch["referrals"]
        if r["patient_id"] != first_patient and r["practitioner_id"] != moved["practitioner_id"]
    )
    moved["patient_id"] = other["patient_id"]
    _load(db, ctx, {"referrals": [moved]})
    batch["referrals"][0] = moved
    assert _members(db, moved["practitioner_id"]) == _expected(batch, moved["practitioner_id"])
    assert resource_id("patient", first_patient) not in _members(db, moved["practitioner_id"])
    # Back to the first patient, and to the other referral's referrer, in one change.
    old_referrer, moved["patient_id"] = moved["practitioner_id"], first_patient
    moved["practitioner_id"] = other["practitioner_id"]
    _load(db, ctx, {"referrals": [moved]})
    batch["referrals"][0] = moved
    for practitioner in (old_referrer, other["practitioner_id"]):
        assert _members(db, practitioner) == _expected(batch, practitioner)
    assert resource_id("patient", first_patient) in _members(db, other["practitioner_id"])


def test_backfill_writes_groups_for_referrals_stored_before(db, ctx, app):
    batch = synthetic.batch(seed=8, n_patients=6, sessions_per_patient=0)
    _load(db, ctx, batch)
    referrers = {r["practitioner_id"] for r in batch["referrals"]}
    with db.writer() as conn:  # as a store from before Groups existed: no Group rows
        conn.execute(delete(fhir_resource).where(fhir_resource.c.resource_type == "Group"))
        conn.execute(delete(fhir_resource_version).where(fhir_resource_version.c.resource_type == "Group"))
        conn.execute(delete(change_feed).where(change_feed.c.resource_type == "Group"))
        conn.execute(delete(fhir_resource_source).where(fhir_resource_source.c.resource_type == "Group"))
    assert all(_members(db, p) == frozenset() for p in referrers)
    result = app.test_cli_runner().invoke(args=["groups", "backfill"])
    assert result.exit_code == 0, result.output
    assert f"{len(referrers)} Group versions written" in result.output
    assert all(_members(db, p) == _expected(batch, p) for p in referrers)
    assert backfill_groups(db, ctx) == 0  # idempotent
    listed = app.test_cli_runner().invoke(args=["groups", "list"]).output.splitlines()
    assert len(listed) == len(referrers)
    some = sorted(referrers)[0]
    line = app.test_cli_runner().invoke(args=["groups", "list", "--referrer", some]).output.strip()
    assert line.split("\t")[:2] == [referrer_group_id(some), some]
    assert f"{len(_expected(batch, some))} patients" in line


def test_migration_fills_links_from_stored_referrals(database_url):
    """0006 reads the referrals stored before it: run it on a store at 0005 holding one referral."""
    from alembic import command
    from sqlalchemy import text

    from integration.store.db import make_engine
    from integration.store.migrate import _config

    engine = make_engine(database_url)
    config = _config()
    payload = orjson.dumps({"id": "ref-x", "patient_id": "mrn-x", "practitioner_id": "dr-x"}).decode()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0005")
        conn.execute(
            text(
                "INSERT INTO clinic_record (kind, clinic_id, version, content_hash, payload, source,"
                " received_at)"
                " VALUES ('referral', 'ref-x', 1, 'h', :p, 'api', :t)"
            ),
            {"p": payload, "t": "2026-01-01 00:00:00+00:00"},
        )
        conn.execute(
            text(
                "INSERT INTO clinic_record_head (kind, clinic_id, version, content_hash, patient_id,"
                " updated_at)"
                " VALUES ('referral', 'ref-x', 1, 'h', 'mrn-x', :t)"
            ),
            {"t": "2026-01-01 00:00:00+00:00"},
        )
        command.upgrade(config, "head")
    with engine.begin() as conn:
        rows = conn.execute(select(referral_link)).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [("ref-x", "dr-x", "mrn-x")]


def test_db_upgrade_backfills_groups_too(db, ctx, app):
    batch = synthetic.batch(seed=9, n_patients=4, sessions_per_patient=0)
    _load(db, ctx, batch)
    referrer = batch["referrals"][0]["practitioner_id"]
    with db.writer() as conn:
        for table in (fhir_resource, fhir_resource_version, change_feed):
            conn.execute(delete(table).where(table.c.resource_type == "Group"))
        conn.execute(delete(fhir_resource_source).where(fhir_resource_source.c.resource_type == "Group"))
    result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert _members(db, referrer) == _expected(batch, referrer)
