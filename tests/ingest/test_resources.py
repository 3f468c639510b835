"""Intake writes FHIR resources, their versions and the change feed with the record, in one transaction."""

import copy
import dataclasses
from collections import Counter
from datetime import UTC, datetime

import orjson
import pytest
from sqlalchemy import func, select

from integration.ingest import resources, service, synthetic
from integration.store.resources import ResourceRepository, ResourceWrite
from integration.store.schema import change_feed, clinic_record, fhir_resource, fhir_resource_version
from mappings import map_record_dicts
from mappings.errors import UnknownCodeError
from tests.mappings.conformance import SCHEMA_PATH, code_problems, profile_problems, schema_errors


def _post(client, headers, body):
    response = client.post(
        "/api/v1/batch", data=orjson.dumps(body), headers=headers, content_type="application/json"
    )
    assert response.status_code == 200, response.json
    return response.json


def _feed(db, after=0):
    with db.reader() as conn:
        return ResourceRepository(conn).changes_since(after, limit=100000)


def _max_seq(db):
    with db.reader() as conn:
        return conn.execute(select(func.coalesce(func.max(change_feed.c.seq), 0))).scalar_one()


@pytest.fixture
def batch():
    return synthetic.batch(seed=21, n_patients=2, sessions_per_patient=2)


def test_a_batch_becomes_the_expected_resources_with_meta_and_feed(client, clinic_headers, batch, db, ctx):
    _post(client, clinic_headers, batch)
    expected = Counter()
    expected_ids = set()
    for collection, kind in service.COLLECTIONS.items():
        for record in batch[collection]:
            for r in map_record_dicts(kind, record, ctx):
                expected_ids.add((r["resourceType"], r["id"]))
    expected = Counter(t for t, _ in expected_ids)
    with db.reader() as conn:
        rows = conn.execute(
            select(fhir_resource.c.resource_type, fhir_resource.c.id, fhir_resource.c.content)
        ).all()
    stored = {(r.resource_type, r.id): orjson.loads(r.content) for r in rows}
    # Every mapped resource is stored (the configuration resources come on top).
    assert expected_ids <= set(stored)
    assert Counter(t for t, _ in stored if (t, _) in expected_ids) == expected
    for (rtype, rid), body in stored.items():
        assert body["resourceType"] == rtype and body["id"] == rid
        assert body["meta"]["versionId"] == "1" and body["meta"]["lastUpdated"].endswith("+00:00")
    feed = _feed(db)
    assert len(feed) == len(stored)
    assert [row["seq"] for row in feed] == sorted(row["seq"] for row in feed)


def test_stored_resources_are_valid_r4_and_conform(client, clinic_headers, batch, db):
    if not SCHEMA_PATH.is_file():
        pytest.skip(f"HL7 R4 JSON schema not found at {SCHEMA_PATH} (../shared is absent)")
    _post(client, clinic_headers, batch)
    with db.reader() as conn:
        contents = conn.execute(select(fhir_resource.c.content)).scalars().all()
    for content in contents:
        resource = orjson.loads(content)
        assert schema_errors(resource) == []
        assert profile_problems(resource) == []
        assert code_problems(resource, batch) == []  # codes the records carry (ICD-10, BCP 47) count as known


def test_same_batch_twice_creates_no_new_versions(client, clinic_headers, batch, db):
    _post(client, clinic_headers, batch)
    before = _max_seq(db)
    _post(client, clinic_headers, batch)
    assert _max_seq(db) == before


def test_one_changed_vital_value_makes_exactly_one_new_observation_version(client, clinic_headers, batch, db):
    _post(client, clinic_headers, batch)
    before = _max_seq(db)
    session = copy.deepcopy(batch["sessions"][0])
    reading = next(v for v in session["vitals"] if "heart_rate" in v)
    reading["heart_rate"] += 1
    client.put(f"/api/v1/sessions/{session['id']}", json=session, headers=clinic_headers)
    new = _feed(db, before)
    assert [(row["resource_type"], row["version_id"], row["deleted"]) for row in new] == [
        ("Observation", 2, False)
    ]
    with db.reader() as conn:
        body = orjson.loads(ResourceRepository(conn).read("Observation", new[0]["resource_id"]).content)
    assert body["valueQuantity"]["value"] == reading["heart_rate"]
    assert body["meta"]["versionId"] == "2"


def test_a_vital_set_that_disappears_becomes_deleted_versions(client, clinic_headers, batch, db):
    _post(client, clinic_headers, batch)
    before = _max_seq(db)
    session = copy.deepcopy(batch["sessions"][0])
    session["vitals"].pop()
    client.put(f"/api/v1/sessions/{session['id']}", json=session, headers=clinic_headers)
    new = _feed(db, before)
    deleted = [row for row in new if row["deleted"]]
    assert deleted and all(row["resource_type"] == "Observation" for row in deleted)
    with db.reader() as conn:
        repo = ResourceRepository(conn)
        for row in deleted:
            current = repo.read("Observation", row["resource_id"])
            assert current.deleted and current.content is None
            assert [v.version_id for v in repo.history("Observation", row["resource_id"])] == [1, 2]


def test_shared_careplan_survives_while_another_session_of_the_series_produces_it(client, clinic_headers, db):
    batch = synthetic.batch(seed=21, n_patients=1, sessions_per_patient=3)
    by_series = Counter(s["series"]["number"] for s in batch["sessions"] if "series" in s)
    number = next(n for n, count in by_series.items() if count >= 2)
    sessions = [s for s in batch["sessions"] if s.get("series", {}).get("number") == number]
    _post(client, clinic_headers, batch)
    before = _max_seq(db)
    first = copy.deepcopy(sessions[0])
    del first["series"]
    client.put(f"/api/v1/sessions/{first['id']}", json=first, headers=clinic_headers)
    assert not any(row["resource_type"] == "CarePlan" and row["deleted"] for row in _feed(db, before))


def test_a_record_that_cannot_be_mapped_is_rejected_whole(client, clinic_headers, batch, db, monkeypatch):
    _post(client, clinic_headers, {"practitioners": batch["practitioners"], "patients": batch["patients"]})
    counts = _counts(db)

    def refuse(kind, record, ctx):
        raise UnknownCodeError("drug", "made-up")

    monkeypatch.setattr("integration.ingest.resources.map_record_dicts", refuse)
    session = batch["sessions"][0]
    response = client.put(f"/api/v1/sessions/{session['id']}", json=session, headers=clinic_headers)
    assert response.status_code == 422
    assert response.json["errors"][0]["rule"] == "mapping"
    assert "unknown drug" in response.json["errors"][0]["message"]
    assert _counts(db) == counts


def test_a_failure_writing_resources_leaves_no_record_either(client, clinic_headers, batch, db, monkeypatch):
    _post(client, clinic_headers, {"practitioners": batch["practitioners"], "patients": batch["patients"]})
    counts = _counts(db)

    def crash(self, writes, *, now):
        raise RuntimeError("disk full")

    monkeypatch.setattr(ResourceRepository, "write", crash)
    session = batch["sessions"][0]
    response = client.put(f"/api/v1/sessions/{session['id']}", json=session, headers=clinic_headers)
    assert response.status_code == 500
    assert _counts(db) == counts


def _counts(db):
    with db.reader() as conn:
        return tuple(
            conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (clinic_record, fhir_resource, fhir_resource_version, change_feed)
        )


def test_a_child_id_reused_by_another_session_is_rejected_not_overwritten(client, clinic_headers, batch, db):
    _post(client, clinic_headers, batch)
    first, second = batch["sessions"][0], copy.deepcopy(batch["sessions"][1])
    taken = first["medications"][0]["id"]
    second["medications"][0]["id"] = taken
    before = _max_seq(db)
    response = client.put(f"/api/v1/sessions/{second['id']}", json=second, headers=clinic_headers)
    assert response.status_code == 422
    errors = response.json["errors"]
    assert {e["rule"] for e in errors} == {"duplicate-id"}
    assert any("MedicationAdministration" in e["message"] and taken in e["message"] for e in errors)
    assert all(first["id"] in e["message"] for e in errors)
    assert _max_seq(db) == before
    stored = client.get(f"/api/v1/sessions/{second['id']}", headers=clinic_headers).json
    assert stored["version"] == 1


def test_two_sessions_of_one_batch_with_the_same_child_id(client, clinic_headers, batch):
    first, second = batch["sessions"][0], batch["sessions"][1]
    second["medications"][0]["id"] = first["medications"][0]["id"]
    body = _post(client, clinic_headers, batch)
    by_id = {r["id"]: r for r in body["results"] if r["kind"] == "session"}
    assert by_id[first["id"]]["status"] == "accepted"
    assert by_id[second["id"]]["status"] == "rejected"
    assert by_id[second["id"]]["errors"][0]["rule"] == "duplicate-id"


@pytest.fixture
def validations(monkeypatch):
    """Every R4B model validation intake runs, as (resourceType, id), in order."""
    seen: list[tuple[str, str]] = []
    real = resources.validate

    def counting(body):
        seen.append((body["resourceType"], body["id"]))
        return real(body)

    monkeypatch.setattr(resources, "validate", counting)
    return seen


def _changed_heart_rate(batch):
    session = copy.deepcopy(batch["sessions"][0])
    next(v for v in session["vitals"] if "heart_rate" in v)["heart_rate"] += 1
    return session


def test_an_updated_session_validates_only_the_resources_it_changes(
    client, clinic_headers, batch, db, validations
):
    _post(client, clinic_headers, batch)
    assert len(validations) >= 50  # everything new was validated
    validations.clear()
    before = _max_seq(db)
    session = _changed_heart_rate(batch)
    assert (
        client.put(f"/api/v1/sessions/{session['id']}", json=session, headers=clinic_headers).status_code
        == 200
    )
    new = _feed(db, before)
    assert [(row["resource_type"], row["resource_id"], row["version_id"]) for row in new] == [
        ("Observation", validations[0][1], 2)
    ]
    assert len(validations) == 1


def test_a_changed_resource_failing_its_model_still_rejects_the_record(
    client, clinic_headers, batch, db, monkeypatch
):
    _post(client, clinic_headers, batch)
    counts = _counts(db)
    real = resources.validate

    def strict(body):
        if body["resourceType"] == "Observation":  # only the changed one reaches the models
            return real({"resourceType": "Observation", "id": body["id"]})  # no status, no code
        return real(body)

    monkeypatch.setattr(resources, "validate", strict)
    session = _changed_heart_rate(batch)
    response = client.put(f"/api/v1/sessions/{session['id']}", json=session, headers=clinic_headers)
    assert response.status_code == 422
    assert response.json["errors"][0]["rule"] == "mapping"
    assert "Observation" in response.json["errors"][0]["message"]
    assert _counts(db) == counts


def test_content_another_writer_changed_after_the_pre_read_is_validated_and_written(
    client, clinic_headers, batch, db, ctx, validations, monkeypatch
):
    _post(client, clinic_headers, batch)
    session = _changed_heart_rate(batch)
    # An Observation of the session that the update leaves as it is: the pre-read finds it stored.
    stored_before = map_record_dicts("session", batch["sessions"][0], ctx)
    unchanged = next(
        d
        for d in map_record_dicts("session", session, ctx)
        if d["resourceType"] == "Observation" and d in stored_before
    )
    with db.reader() as conn:
        original = orjson.loads(ResourceRepository(conn).read("Observation", unchanged["id"]).content)
    real_map_changed = service._map_changed

    def map_then_someone_writes(db_, candidates, ctx_):
        real_map_changed(db_, candidates, ctx_)
        other = {**original, "status": "amended", "meta": {"versionId": "2"}}
        with db.writer() as conn:
            ResourceRepository(conn).write(
                [
                    ResourceWrite(
                        "Observation", unchanged["id"], 2, "other", orjson.dumps(other).decode(), None
                    )
                ],
                now=datetime.now(UTC),
            )

    monkeypatch.setattr(service, "_map_changed", map_then_someone_writes)
    before = _max_seq(db)
    validations.clear()
    assert (
        client.put(f"/api/v1/sessions/{session['id']}", json=session, headers=clinic_headers).status_code
        == 200
    )
    new = [(row["resource_id"], row["version_id"]) for row in _feed(db, before)]
    assert (unchanged["id"], 2) in new and (unchanged["id"], 3) in new
    assert validations.count(("Observation", unchanged["id"])) == 1  # validated inside the write
    with db.reader() as conn:
        restored = orjson.loads(ResourceRepository(conn).read("Observation", unchanged["id"]).content)
    assert restored["meta"]["versionId"] == "3"
    assert {k: v for k, v in restored.items() if k != "meta"} == {
        k: v for k, v in original.items() if k != "meta"
    }


def test_content_repeated_within_a_batch_is_validated_once(client, clinic_headers, db, ctx, validations):
    batch = synthetic.batch(seed=21, n_patients=1, sessions_per_patient=3)
    careplans = [
        d
        for s in batch["sessions"]
        for d in map_record_dicts("session", s, ctx)
        if d["resourceType"] == "CarePlan"
    ]
    distinct = {orjson.dumps(d, option=orjson.OPT_SORT_KEYS) for d in careplans}
    assert len(careplans) > len(distinct)  # the sessions of a series share their CarePlan
    _post(client, clinic_headers, batch)
    assert sum(1 for t, _ in validations if t == "CarePlan") == len(distinct)


def test_unchanged_configuration_resources_are_neither_validated_nor_written(db, ctx, validations):
    first = service.write_static_resources(db, ctx)
    assert first > 0 and len(validations) == first
    validations.clear()
    assert service.write_static_resources(db, ctx) == 0
    assert validations == []
    renamed = dataclasses.replace(
        ctx, organization=dataclasses.replace(ctx.organization, name="Renamed Clinic")
    )
    assert service.write_static_resources(db, renamed) >= 1
    assert any(t == "Organization" for t, _ in validations)
