"""Properties: no input whatsoever raises; every synthetic record is valid by construction."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from integration.ingest.problems import RecordError
from integration.ingest.synthetic import batch
from integration.ingest.validation import KINDS, patient_of, references, validate_record
from tests.ingest.validation.records import BASES, RULES

# Strings that reach deep into the rules: valid-looking values of every format, and troublemakers.
TRICKY = [
    "",
    " ",
    "\x00",
    "\ud800",
    "x" * 300,
    "\u0663",
    "\uff11",
    "2026-03-02T09:15:00-08:00",
    "2026-03-02T09:15:00",
    "2026-03-02T23:59:59.999999999Z",
    "2026-02-30T10:00Z",
    "9999-12-31T23:59+23:59",
    "0001-01-01T00:00-23:59",
    "2026-03-02",
    "1899-12-31",
    "F33.2",
    "35489007",
    "1234567893",
    "q1",
    "q0",
    "q99",
    "ketamine",
    "rxnorm:6130",
    "mg/kg",
    "mg/kg/h",
    "mcg/kg/h",
    "mL",
    "mL/h",
    "g",
    "completed",
    "stopped",
    "planned",
    "snomed",
    "icd10cm",
    "rxnorm",
    "phq9",
    "bpi_severity",
    "cadss",
    "pre",
    "US",
    "en-US",
    "urn:x",
    "a@b.org",
    "MRN1",
]
FIELDS = [
    "id",
    "patient_id",
    "status",
    "start",
    "end",
    "weight_kg",
    "dose",
    "rate",
    "value",
    "unit",
    "total_mg",
    "wasted",
    "witness_id",
    "answers",
    "instrument",
    "total",
    "taken_at",
    "systolic",
    "diastolic",
    "series",
    "session_number",
    "planned_sessions",
    "number",
    "allergies",
    "no_known_allergies",
    "substance",
    "system",
    "code",
    "indication",
    "reason",
    "vitals",
    "medications",
    "assessments",
    "adverse_events",
    "birth_date",
    "npi",
    "q1",
    "q3",
    "stop_reason",
    "address",
    "country",
]
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**300, max_value=10**400)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from(TRICKY)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=10,
)


def _slots(value: Any, path: tuple = ()) -> list[tuple]:
    """Every place in a record: the path of each dict key and list item, containers included."""
    out = [path]
    if isinstance(value, dict):
        for key, child in value.items():
            out.extend(_slots(child, (*path, key)))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            out.extend(_slots(child, (*path, i)))
    return out


def _check(kind: str, record: object) -> None:
    errors = validate_record(kind, record)
    assert isinstance(errors, list)
    for e in errors:
        assert isinstance(e, RecordError) and e.kind == kind and e.rule in RULES
        assert isinstance(e.path, str) and isinstance(e.message, str) and e.message
        assert e.id is None or isinstance(e.id, str)
        assert len(e.message) < 400
    if isinstance(record, dict):
        references(kind, record)
        patient_of(kind, record)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, Any]:
    kind = draw(st.sampled_from(KINDS))
    rec = BASES[kind]()
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        slots = _slots(rec)
        path = draw(st.sampled_from(slots))
        if not path:
            continue
        parent = rec
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(json_values)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.sampled_from(FIELDS) | st.text(max_size=6))] = draw(json_values)
        else:
            parent.append(draw(json_values))
    return kind, rec


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_random_values_in_random_places_never_raise(case: tuple[str, Any]) -> None:
    _check(*case)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(KINDS), json_values)
def test_any_json_value_as_a_record_never_raises(kind: str, record: Any) -> None:
    _check(kind, record)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(KINDS), st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=8))
def test_objects_of_known_fields_with_any_values_never_raise(kind: str, record: dict) -> None:
    _check(kind, record)


@settings(max_examples=15, deadline=None)
@given(
    st.integers(min_value=0, max_value=2**32),
    st.integers(min_value=1, max_value=3),
    st.integers(min_value=1, max_value=8),
)
def test_synthetic_batches_are_valid_by_construction(seed: int, n_patients: int, sessions: int) -> None:
    records = batch(seed, n_patients, sessions)
    for key, kind in (
        ("practitioners", "practitioner"),
        ("patients", "patient"),
        ("referrals", "referral"),
        ("sessions", "session"),
        ("assessments", "assessment"),
    ):
        for rec in records[key]:
            assert validate_record(kind, rec) == [], (seed, rec["id"])
