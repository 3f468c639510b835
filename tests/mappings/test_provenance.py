"""Provenance: every session resource as target, a recorded time taken from the record, the system agent."""

from __future__ import annotations

from tests.mappings.helpers import med, one, phq9, resources, session


def test_provenance_targets_every_other_resource() -> None:
    rs = resources(
        "session",
        session(
            medications=[med()],
            assessments=[phq9(1, 1, 1, 1, 1, 1, 1, 1, 1)],
            vitals=[{"taken_at": "2026-03-02T10:30:00-08:00", "heart_rate": 70}],
        ),
    )
    prov = one(rs, "Provenance")
    assert rs[-1] is prov
    assert [t["reference"] for t in prov["target"]] == [f"{r['resourceType']}/{r['id']}" for r in rs[:-1]]
    assert prov["recorded"] == "2026-03-02T10:30:00-08:00", "latest time stated in the record"
    assert prov["agent"][0]["who"]["reference"].startswith("Device/")
    assert prov["agent"][1]["type"]["coding"][0]["code"] == "AUT"


def test_recorded_is_not_a_clock() -> None:
    a = one(resources("session", session()), "Provenance")
    b = one(resources("session", session()), "Provenance")
    assert a == b and a["recorded"] == "2026-03-02T10:00:00-08:00"
