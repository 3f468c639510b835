"""Search SQL plans: a criterion that does not drive the query is checked per candidate, never by scan."""

import pytest

from integration.fhir_api.compartment import UNRESTRICTED
from integration.fhir_api.search_query import parse
from integration.fhir_api.search_sql import page_query


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
