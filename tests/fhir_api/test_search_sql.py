"""Search SQL plans: a criterion that does not drive the query is checked per candidate, never by scan."""

from datetime import UTC, datetime

import orjson
import pytest

from integration.fhir_api.compartment import UNRESTRICTED, PatientScope
from integration.fhir_api.search_query import encode_cursor, parse
from integration.fhir_api.search_sql import page_query
from integration.store.resources import ResourceRepository, ResourceWrite

CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


def test_sqlite_checks_other_criteria_through_the_candidates_own_index_rows(db):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL plans from statistics; the hint is SQLite's alone")
    pairs = [("patient", "p1"), ("category", "vital-signs"), ("code", "8867-4")]
    query = parse("Observation", pairs, strict=True)
    stmt, params, _ = page_query(query, UNRESTRICTED)
    compiled = stmt.params(params).compile(db.engine, compile_kwargs={"literal_binds": True})
    with db.reader() as conn:
        plan = [row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}")]
    token_steps = [step for step in plan if "fhir_search_token" in step]
    assert len(token_steps) == 2, plan
    # Before the hint, SQLite chose the covering value index: every row with that code, a full scan.
    assert all("ix_fhir_search_token_resource_type_resource_id_param" in step for step in token_steps), plan


def _observations(db, per_patient: dict[str, int]) -> None:
    """Vital-sign Observations written straight to the store (the search index is filled with them)."""
    writes = []
    for patient, count in per_patient.items():
        for k in range(count):
            obs = {
                "resourceType": "Observation",
                "id": f"{patient}-o{k}",
                "status": "final",
                "category": [{"coding": [{"system": CATEGORY, "code": "vital-signs" if k % 2 else "lab"}]}],
                "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                "subject": {"reference": f"Patient/{patient}"},
            }
            writes.append(
                ResourceWrite("Observation", obs["id"], 1, "h", orjson.dumps(obs).decode(), patient)
            )
    with db.writer() as conn:
        ResourceRepository(conn).write(writes, now=datetime.now(UTC))


def _run(db, pairs, scope=UNRESTRICTED) -> list[str]:
    stmt, params, _ = page_query(parse("Observation", pairs, strict=True), scope)
    with db.reader() as conn:
        return [row.id for row in conn.execute(stmt, params)]


def test_searches_of_one_shape_share_a_statement_and_each_gets_its_own_matches(db):
    _observations(db, {"pa": 4, "pb": 6})
    first = page_query(
        parse("Observation", [("patient", "pa"), ("category", "vital-signs")], strict=True), UNRESTRICTED
    )
    second = page_query(
        parse("Observation", [("patient", "pb"), ("category", "lab")], strict=True), UNRESTRICTED
    )
    assert first[0] is second[0]
    assert first[1] != second[1]
    assert _run(db, [("patient", "pa"), ("category", "vital-signs")]) == ["pa-o1", "pa-o3"]
    assert _run(db, [("patient", "pb"), ("category", "lab")]) == ["pb-o0", "pb-o2", "pb-o4"]
    # A value's structure is part of the shape: `system|code` is not `code`, one value not two.
    third = page_query(
        parse("Observation", [("patient", "pa"), ("category", f"{CATEGORY}|lab")], strict=True), UNRESTRICTED
    )
    assert third[0] is not first[0]
    assert _run(db, [("patient", "pa"), ("category", f"{CATEGORY}|lab")]) == ["pa-o0", "pa-o2"]
    assert _run(db, [("patient", "pa,pb"), ("category", "vital-signs")]) == [
        "pa-o1",
        "pa-o3",
        "pb-o1",
        "pb-o3",
        "pb-o5",
    ]
    assert _run(db, [("_id", "pa-o0,pb-o5")]) == ["pa-o0", "pb-o5"]


def test_a_shared_statement_applies_each_clients_own_group(db):
    _observations(db, {"pa": 2, "pb": 2, "pc": 2})
    only_a = PatientScope(frozenset({"pa"}), "g1")
    b_and_c = PatientScope(frozenset({"pb", "pc"}), "g2")
    nobody = PatientScope(frozenset(), "g3")
    pairs = [("code", "8867-4")]
    assert (
        page_query(parse("Observation", pairs, strict=True), only_a)[0]
        is (page_query(parse("Observation", pairs, strict=True), b_and_c)[0])
    )
    assert _run(db, pairs, only_a) == ["pa-o0", "pa-o1"]
    assert _run(db, pairs, b_and_c) == ["pb-o0", "pb-o1", "pc-o0", "pc-o1"]
    assert _run(db, pairs, nobody) == []
    assert _run(db, pairs) == ["pa-o0", "pa-o1", "pb-o0", "pb-o1", "pc-o0", "pc-o1"]


def test_paging_through_a_shared_statement_continues_after_each_cursor(db):
    _observations(db, {"pa": 5})
    pairs = [("patient", "pa"), ("_count", "2")]
    query = parse("Observation", pairs, strict=True)
    seen: list[str] = []
    while True:
        stmt, params, _ = page_query(query, UNRESTRICTED)
        with db.reader() as conn:
            rows = conn.execute(stmt, params).all()
        seen += [row.id for row in rows[:2]]
        if len(rows) <= 2:
            break
        query = parse("Observation", [*pairs, ("_cursor", encode_cursor((rows[1].k0,)))], strict=True)
    assert seen == [f"pa-o{k}" for k in range(5)]
