"""Property tests: any valid record maps to schema-valid, conformant resources, byte-identical every time."""

from __future__ import annotations

import copy

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mappings.dispatch import map_record_dicts
from mappings.serialize import dict_bytes, map_record_bytes
from tests.mappings.conformance import all_problems
from tests.mappings.conftest import make_ctx
from tests.mappings.strategies import RECORDS

CTX = make_ctx()
FAST = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)


@pytest.mark.parametrize("kind", sorted(RECORDS))
def test_random_records_map_to_valid_resources(kind: str, schema_available: None) -> None:
    @FAST
    @given(RECORDS[kind])
    def check(record: dict) -> None:
        original = copy.deepcopy(record)
        resources = map_record_dicts(kind, record, CTX)
        assert record == original, "mapping must not mutate its input"
        assert resources
        for r in resources:
            assert all_problems(r, record) == [], f"{r['resourceType']}: {all_problems(r, record)}"

    check()


@pytest.mark.parametrize("kind", sorted(RECORDS))
def test_same_input_same_bytes(kind: str) -> None:
    @FAST
    @given(RECORDS[kind])
    def check(record: dict) -> None:
        first = [b for _, b in map_record_bytes(kind, copy.deepcopy(record), CTX)]
        second = [dict_bytes(d) for d in map_record_dicts(kind, copy.deepcopy(record), make_ctx())]
        assert first == second

    check()


@settings(max_examples=25, deadline=None, derandomize=True)
@given(RECORDS["session"], st.randoms(use_true_random=False))
def test_child_order_does_not_change_child_bytes(session: dict, rnd) -> None:
    """A child's resource depends on the child, not on its position in the session."""
    shuffled = copy.deepcopy(session)
    for key in ("medications", "vitals", "assessments", "adverse_events"):
        if key in shuffled:
            rnd.shuffle(shuffled[key])
    a = {
        (r["resourceType"], r["id"]): dict_bytes(r)
        for r in map_record_dicts("session", session, CTX)
        if r["resourceType"] != "Provenance"
    }
    b = {
        (r["resourceType"], r["id"]): dict_bytes(r)
        for r in map_record_dicts("session", shuffled, CTX)
        if r["resourceType"] != "Provenance"
    }
    assert a == b


@settings(max_examples=25, deadline=None, derandomize=True)
@given(RECORDS["session"], st.data())
def test_changing_one_vital_value_changes_exactly_one_resource(session: dict, data: st.DataObject) -> None:
    """The store's 'only changed content makes a new version' rule relies on this locality."""
    measured = [(i, k) for i, v in enumerate(session.get("vitals", ())) for k in v if k != "taken_at"]
    if not measured:
        return
    i, key = data.draw(st.sampled_from(measured))
    changed = copy.deepcopy(session)
    value = changed["vitals"][i][key]
    changed["vitals"][i][key] = value - 1 if key != "diastolic" and value > 30 else value + 0.5
    if key == "diastolic" and changed["vitals"][i].get("systolic", 1e9) <= changed["vitals"][i][key]:
        return  # would break the contract's diastolic < systolic rule
    before = {(r["resourceType"], r["id"]): dict_bytes(r) for r in map_record_dicts("session", session, CTX)}
    after = {(r["resourceType"], r["id"]): dict_bytes(r) for r in map_record_dicts("session", changed, CTX)}
    assert before.keys() == after.keys()
    assert sum(before[k] != after[k] for k in before) == 1
