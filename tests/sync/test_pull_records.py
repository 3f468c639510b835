"""EHR patient links against a real EHR server on 127.0.0.1 and the real database (both backends): only the
EHR Patient linked to a clinic patient may update its demographics; a second EHR Patient carrying the same
clinic MRN (someone else's MRN) is rejected, audited, and changes nothing."""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest
from sqlalchemy import select

from integration.store.records import ClinicRecordRepository
from integration.store.schema import audit_event, ehr_patient_link
from tests.sync.conftest import load
from tests.sync.test_pull import T0, destination, ehr_patient, pull


@pytest.fixture
def clinic(db, ctx):
    return [p["id"] for p in load(db, ctx, patients=3)["patients"]]


def links(db):
    t = ehr_patient_link.c
    with db.reader() as conn:
        return dict(conn.execute(select(t.patient_id, t.ehr_patient_id)).all())


def family(db, mrn):
    with db.reader() as conn:
        stored = ClinicRecordRepository(conn).get("patient", mrn)
    return orjson.loads(stored.payload)["family"], stored.version


def audits(db, action):
    t = audit_event.c
    with db.reader() as conn:
        return conn.execute(select(t.entity, t.patient_id, t.detail).where(t.action == action)).all()


def test_first_match_links_and_someone_elses_mrn_is_rejected_audited_and_changes_nothing(
    app, db, ctx, receiver, clinic
):
    a, b, _c = clinic
    ehr, dest = receiver.ehr, destination(receiver, referrals=False)
    ehr.put(ehr_patient(ctx, "ehr-a", a, family="Linkfirst"), T0)
    ehr.put(ehr_patient(ctx, "ehr-b", b, family="Linksecond"), T0)
    first = pull(app, dest)
    assert first["state"] == "done" and first["counts"]["stored"] == 2, first
    assert links(db) == {a: "ehr-a", b: "ehr-b"}
    assert {(e.entity, e.patient_id) for e in audits(db, "sync.pull.link")} == {
        ("test-ehr/Patient/ehr-a", a),
        ("test-ehr/Patient/ehr-b", b),
    }
    before_a, before_b = family(db, a), family(db, b)

    # The attack: another EHR Patient names patient a's MRN; and the linked ehr-b now claims it too.
    ehr.put(ehr_patient(ctx, "ehr-mallory", a, family="Mallory"), T0 + timedelta(seconds=5))
    ehr.put(ehr_patient(ctx, "ehr-b", a, family="Swapped"), T0 + timedelta(seconds=6))
    second = pull(app, dest)
    assert second["counts"]["rejected"] == 2 and second["counts"].get("stored", 0) == 0, second
    errors = {e["resource"]: e for e in second["errors"]}
    assert errors["Patient/ehr-mallory"]["rule"] == "ehr-patient-link"
    assert "linked to another EHR Patient" in errors["Patient/ehr-mallory"]["error"]
    assert errors["Patient/ehr-b"]["rule"] == "ehr-patient-link"
    assert "linked to another clinic patient" in errors["Patient/ehr-b"]["error"]
    assert family(db, a) == before_a and family(db, b) == before_b  # nothing changed, no new version
    assert links(db) == {a: "ehr-a", b: "ehr-b"}
    rejected = [ref for e in audits(db, "sync.pull.reject") for ref in orjson.loads(e.detail)["rejected"]]
    assert sorted(rejected) == ["Patient/ehr-b", "Patient/ehr-mallory"]  # audited (one entry per page)

    # The linked EHR Patient still updates its own patient.
    ehr.put(ehr_patient(ctx, "ehr-a", a, family="Castellan"), T0 + timedelta(seconds=7))
    third = pull(app, dest)
    assert third["counts"]["stored"] == 1 and family(db, a)[0] == "Castellan"


def test_ambiguous_claims_link_nothing(app, db, ctx, receiver, clinic):
    a, b, c = clinic
    ehr, dest = receiver.ehr, destination(receiver, referrals=False, page_size=10)
    ehr.put(ehr_patient(ctx, "ehr-c1", c, family="One"), T0)
    ehr.put(ehr_patient(ctx, "ehr-c2", c, family="Two"), T0)  # two unlinked claims on c in one page
    both = ehr_patient(ctx, "ehr-ab", a, family="Both")
    both["identifier"].append({"system": ctx.sid("patient"), "value": b})  # carries two clinic MRNs
    ehr.put(both, T0)
    result = pull(app, dest)
    assert result["counts"]["rejected"] == 3 and result["counts"].get("stored", 0) == 0, result
    reasons = {e["resource"]: e["error"] for e in result["errors"]}
    assert "several EHR Patients claim" in reasons["Patient/ehr-c1"]
    assert "several EHR Patients claim" in reasons["Patient/ehr-c2"]
    assert "more than one clinic MRN" in reasons["Patient/ehr-ab"]
    assert links(db) == {}
    assert all(family(db, m)[1] == 1 for m in (a, b, c))


def test_an_admin_removes_a_wrong_link_and_a_full_pull_links_the_right_one(app, db, ctx, receiver, clinic):
    """`sync links` lists, `sync unlink` removes (audited); rejected versions come back with a full pull."""
    from integration.sync import service

    a, _b, _c = clinic
    ehr, dest = receiver.ehr, destination(receiver, referrals=False)
    app.extensions[service.EXTENSION] = {dest.name: dest}
    runner = app.test_cli_runner()
    ehr.put(ehr_patient(ctx, "ehr-wrong", a, family="Wrongreg"), T0)
    assert pull(app, dest)["counts"]["stored"] == 1 and links(db) == {a: "ehr-wrong"}
    # The EHR corrects its registration: the wrong chart loses the MRN, the right one carries it.
    ehr.put(ehr_patient(ctx, "ehr-wrong", None, family="Wrongreg"), T0 + timedelta(seconds=5))
    ehr.put(ehr_patient(ctx, "ehr-right", a, family="Rightreg"), T0 + timedelta(seconds=6))
    refused = pull(app, dest)
    assert [e["rule"] for e in refused["errors"] if e["resource"] == "Patient/ehr-right"] == [
        "ehr-patient-link"
    ]

    listed = runner.invoke(args=["sync", "links", "test-ehr"])
    assert listed.exit_code == 0 and listed.output.startswith(f"{a}\tehr-wrong\t")
    assert runner.invoke(args=["sync", "unlink", "test-ehr"]).exit_code == 2  # neither side named
    assert runner.invoke(args=["sync", "unlink", "test-ehr", "--patient", "nobody"]).exit_code == 1
    done = runner.invoke(args=["sync", "unlink", "test-ehr", "--ehr-patient", "ehr-wrong"])
    assert done.exit_code == 0 and f"unlinked {a} from EHR Patient ehr-wrong" in done.output
    assert links(db) == {}
    assert [(e.entity, e.patient_id) for e in audits(db, "sync.pull.unlink")] == [
        ("test-ehr/Patient/ehr-wrong", a)
    ]

    assert pull(app, dest)["counts"].get("stored", 0) == 0  # incremental: the rejected version was seen
    again = pull(app, dest, full=True)
    assert again["counts"]["stored"] == 1, again
    assert links(db) == {a: "ehr-right"} and family(db, a)[0] == "Rightreg"


def test_sync_pull_cli_runs_a_pull_and_refuses_a_paused_destination(app, db, ctx, receiver, clinic):
    from integration.sync import service
    from integration.sync.state import StateRepository

    dest = destination(receiver, referrals=False)
    app.extensions[service.EXTENSION] = {dest.name: dest}
    receiver.ehr.put(ehr_patient(ctx, "ehr-a", clinic[0], family="Clipull"), T0)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["sync", "pull", "test-ehr", "--full"])
    assert result.exit_code == 0, result.output
    run = orjson.loads(result.output)
    assert run["state"] == "done" and run["counts"]["stored"] == 1
    assert family(db, clinic[0])[0] == "Clipull"
    with db.writer() as conn:
        StateRepository(conn).set_paused("test-ehr", True)
    paused = runner.invoke(args=["sync", "pull", "test-ehr"])
    assert paused.exit_code == 1 and "is paused; resume it first" in paused.output
    assert runner.invoke(args=["sync", "pull", "nowhere"]).exit_code == 1
