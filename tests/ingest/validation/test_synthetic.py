"""The synthetic generator: deterministic, realistic, fake, and valid over several seeds."""

from __future__ import annotations

import json
import random
import statistics
from datetime import datetime

import pytest

from integration.ingest import synthetic
from integration.ingest.synthetic import batch
from integration.ingest.validation import formats, references, validate_record

KINDS_BY_KEY = {
    "practitioners": "practitioner",
    "patients": "patient",
    "referrals": "referral",
    "sessions": "session",
    "assessments": "assessment",
}


@pytest.mark.parametrize("seed", [0, 1, 7, 42, 2026])
def test_every_generated_record_is_valid(seed: int) -> None:
    records = batch(seed, 12, 4)
    assert set(records) == set(KINDS_BY_KEY)
    for key, kind in KINDS_BY_KEY.items():
        assert records[key], key
        for rec in records[key]:
            assert validate_record(kind, rec) == [], (seed, rec["id"])


def test_same_seed_same_batch_other_seed_other_batch() -> None:
    assert json.dumps(batch(5, 6, 3)) == json.dumps(batch(5, 6, 3))
    assert json.dumps(batch(5, 6, 3)) != json.dumps(batch(6, 6, 3))


def test_ids_are_unique_within_each_kind_and_references_resolve() -> None:
    records = batch(3, 20, 5)
    ids = {kind: [r["id"] for r in records[key]] for key, kind in KINDS_BY_KEY.items()}
    for kind, values in ids.items():
        assert len(values) == len(set(values)), kind
    # Embedded assessments share the kind's id space with standalone ones.
    embedded = [a["id"] for s in records["sessions"] for a in s.get("assessments", [])]
    assert len(set(embedded) | set(ids["assessment"])) == len(embedded) + len(ids["assessment"])
    for key, kind in KINDS_BY_KEY.items():
        for rec in records[key]:
            for ref in references(kind, rec):
                assert ref.id in ids[ref.kind], (rec["id"], ref)


def test_sessions_look_like_ketamine_infusions() -> None:
    sessions = [s for s in batch(11, 30, 4)["sessions"] if s["status"] != "planned"]
    assert 12 <= statistics.mean(len(s["vitals"]) for s in sessions) <= 15
    for s in sessions:
        assert 1 <= len(s["medications"]) <= 3
        assert 3 <= len(s["assessments"]) <= 4
        keta = s["medications"][0]
        assert keta["drug"] == "ketamine" and keta["dose"]["unit"] == "mg/kg"
        given_for = datetime.fromisoformat(keta["end"]) - datetime.fromisoformat(keta["start"])
        minutes = given_for.total_seconds() / 60
        if s["status"] == "completed":
            assert minutes == 40 and 0.5 <= keta["dose"]["value"] <= 1.0
        else:
            assert minutes < 40 and s["stop_reason"]
        assert abs(keta["total_mg"] - keta["dose"]["value"] * s["weight_kg"]) < 0.06
        for pair in zip(s["vitals"], s["vitals"][1:], strict=False):
            gap = datetime.fromisoformat(pair[1]["taken_at"]) - datetime.fromisoformat(pair[0]["taken_at"])
            assert 5 <= gap.total_seconds() / 60 <= 10
        assert s["start"][-6:] in ("-08:00", "-07:00")
    statuses = {s["status"] for s in batch(11, 60, 4)["sessions"]}
    assert {"completed", "stopped"} <= statuses
    drugs = {m["drug"] for s in sessions for m in s["medications"]}
    assert {"ketamine", "ondansetron", "midazolam"} <= drugs
    assert any(s.get("adverse_events") for s in sessions)


def test_series_are_numbered() -> None:
    sessions = batch(4, 3, 8)["sessions"]
    by_patient: dict[str, list[dict]] = {}
    for s in sessions:
        by_patient.setdefault(s["patient_id"], []).append(s)
    for runs in by_patient.values():
        assert [(s["series"]["number"], s["series"]["session_number"]) for s in runs] == [
            (k // 6 + 1, k % 6 + 1) for k in range(8)
        ]
        starts = [datetime.fromisoformat(s["start"]) for s in runs]
        assert starts == sorted(starts)


def test_people_are_fake_and_practitioners_have_valid_npis() -> None:
    records = batch(8, 40, 1)
    for p in records["practitioners"]:
        assert formats.npi_problem(p["npi"]) is None
        assert p["family"] in synthetic._FAMILY
        assert p["email"].endswith("@example.org")
    for p in records["patients"]:
        assert p["family"] in synthetic._FAMILY
        assert "555-01" in p["phone"]
        assert p.get("email", "x@example.com").endswith("@example.com")
    roles = {p["role"] for p in records["practitioners"]}
    assert {"physician", "nurse", "referrer", "anesthesiologist"} <= roles


def test_building_blocks_take_an_rng() -> None:
    rng = random.Random(1)
    pracs = synthetic.practitioners(rng, 5)
    pats = synthetic.patients(rng, 3, ["prac-0003"], first=10)
    assert [p["id"] for p in pats] == ["MRN100010", "MRN100011", "MRN100012"]
    sess = synthetic.sessions(rng, [p["id"] for p in pats], ["prac-0001"], [], 2)
    assert all("nurse_id" not in s for s in sess)
    assert all(m["performer_id"] == "prac-0001" for s in sess for m in s.get("medications", []))
    refs = synthetic.referrals(rng, pats, ["prac-0003"])
    for kind, recs in (("practitioner", pracs), ("patient", pats), ("session", sess), ("referral", refs)):
        for rec in recs:
            assert validate_record(kind, rec) == []


def test_demo_command_prints_a_batch(capsys: pytest.CaptureFixture[str]) -> None:
    synthetic.main(["--seed", "3", "--patients", "2", "--sessions", "1"])
    assert json.loads(capsys.readouterr().out) == batch(3, 2, 1)
