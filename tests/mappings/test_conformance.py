"""The conformance checks are not vacuous: each catches the fault it exists for."""

from __future__ import annotations

import copy

from tests.mappings.conformance import code_problems, profile_problems, schema_errors, ucum_problems
from tests.mappings.helpers import one, resources, session


def _hr() -> dict:
    rs = resources("session", session(vitals=[{"taken_at": "2026-03-02T09:30:00-08:00", "heart_rate": 80}]))
    return next(r for r in rs if r["resourceType"] == "Observation" and "8867-4" in str(r["code"]))


def test_schema_catches_a_missing_required_element(schema_available: None) -> None:
    obs = _hr()
    assert schema_errors(obs) == []
    del obs["code"]  # the R4 JSON schema lists required complex elements (primitives may come as _x only)
    assert schema_errors(obs)


def test_schema_catches_a_bad_code_value(schema_available: None) -> None:
    obs = _hr()
    obs["status"] = "done"
    assert schema_errors(obs)


def test_schema_catches_an_r5_element_name(schema_available: None) -> None:
    ma = one(
        resources(
            "session",
            session(
                medications=[
                    {
                        "id": "M-1",
                        "drug": "ondansetron",
                        "route": "iv",
                        "dose": {"value": 4, "unit": "mg"},
                        "start": "2026-03-02T09:10:00-08:00",
                        "status": "completed",
                        "performer_id": "P-RN-1",
                    }
                ]
            ),
        ),
        "MedicationAdministration",
    )
    ma["encounter"] = ma.pop("context")
    assert schema_errors(ma)


def test_unknown_code_is_caught() -> None:
    obs = _hr()
    obs["code"]["coding"][0]["code"] = "99999-9"
    assert code_problems(obs)


def test_non_ucum_unit_is_caught() -> None:
    obs = _hr()
    obs["valueQuantity"]["code"] = "bpm"
    assert ucum_problems(obs)


def test_missing_must_support_and_fixed_unit_are_caught() -> None:
    obs = _hr()
    broken = copy.deepcopy(obs)
    del broken["effectiveDateTime"]
    assert profile_problems(obs) == [] and profile_problems(broken)
    broken = copy.deepcopy(obs)
    broken["valueQuantity"]["code"] = "/h"
    assert profile_problems(broken)
