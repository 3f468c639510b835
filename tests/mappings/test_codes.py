"""The terminology files: headed by their systems, every entry marked V/C/local, unknown values rejected."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mappings.codes import DIR, MARKS, terminology
from mappings.errors import UnknownCodeError

OURS = sorted(p for p in DIR.glob("*.json") if p.name != "instruments.json")  # instruments.json is ingest's


def _marks(node: object) -> list[str]:
    out = []
    if isinstance(node, dict):
        if "mark" in node:
            out.append(node["mark"])
        for v in node.values():
            out.extend(_marks(v))
    elif isinstance(node, list):
        for v in node:
            out.extend(_marks(v))
    return out


@pytest.mark.parametrize("path", OURS, ids=[p.name for p in OURS])
def test_file_headed_by_systems_and_marked(path: Path) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    assert next(iter(data)) == "systems", "each terminology file starts with its code-system URL(s)"
    assert "UNVERIFIED" not in _marks(data)
    assert set(_marks(data)) <= MARKS


def test_every_loaded_code_is_verified_corroborated_or_local() -> None:
    codes = terminology().all_codes()
    assert codes
    assert {m for _, _, m in codes} <= MARKS
    for system, _, mark in codes:
        assert (mark == "local") == system.startswith("{base}/"), (system, mark)


def test_reference_unverified_codes_are_absent() -> None:
    """Codes the reference marks UNVERIFIED (or warns against) never appear."""
    emitted = {c for _, c, _ in terminology().all_codes()}
    for bad in (
        "238082",
        "238084",
        "206967",
        "206970",
        "206972",
        "311700",
        "1807565",
        "96366",
        "370143000",
        "255560000",
        "77565-0",
    ):
        assert bad not in emitted


def test_instrument_shape_comes_from_ingest_file() -> None:
    shapes = json.loads((DIR / "instruments.json").read_text(encoding="utf-8"))
    t = terminology()
    assert set(t.instruments) == set(shapes)
    for key, shape in shapes.items():
        inst = t.instrument(key)
        assert len(inst.items) == shape["items"]
        assert (inst.min, inst.max, inst.scoring) == (shape["min"], shape["max"], shape["scoring"])


def test_phq9_codes_match_reference() -> None:
    phq = terminology().instrument("phq9")
    assert phq.panel and phq.panel.code == "44249-1" and phq.total.code == "44261-6"
    assert [i.code.code for i in phq.items] == [
        "44250-9",
        "44255-8",
        "44259-0",
        "44254-1",
        "44251-7",
        "44258-2",
        "44252-5",
        "44253-3",
        "44260-8",
    ]
    assert [(s, c.code) for s, c in phq.answers or ()] == [
        (0, "LA6568-5"),
        (1, "LA6569-3"),
        (2, "LA6570-1"),
        (3, "LA6571-9"),
    ]
    assert phq.safety_item == 9


@pytest.mark.parametrize(
    "total, band",
    [
        (0, "phq9-none-minimal"),
        (4, "phq9-none-minimal"),
        (5, "phq9-mild"),
        (9, "phq9-mild"),
        (10, "phq9-moderate"),
        (14, "phq9-moderate"),
        (15, "phq9-moderately-severe"),
        (19, "phq9-moderately-severe"),
        (20, "phq9-severe"),
        (27, "phq9-severe"),
    ],
)
def test_phq9_band_edges(total: int, band: str) -> None:
    b = terminology().band("phq9", total)
    assert b is not None and b.code.code == band


def test_no_bands_where_reference_gives_none() -> None:
    for key in ("pcl5", "pain_nrs", "bpi_severity", "cadss"):
        assert terminology().band(key, 3) is None


@pytest.mark.parametrize(
    "lookup",
    [
        lambda t: t.drug("propofol"),
        lambda t: t.route("intrathecal"),
        lambda t: t.unit("dose", "mg/m2"),
        lambda t: t.vital("glucose"),
        lambda t: t.instrument("qids"),
        lambda t: t.adverse_event("rash"),
        lambda t: t.status("session_encounter", "paused"),
        lambda t: t.condition_system("icd9"),
        lambda t: t.fhir("participation_type", "NOT-A-CODE"),
        lambda t: t.local("assessment_timing", "later"),
    ],
)
def test_unknown_values_raise(lookup) -> None:
    with pytest.raises(UnknownCodeError):
        lookup(terminology())


def test_translations_only_for_equivalent_pairs() -> None:
    t = terminology()
    icd, sct = t.condition_systems["icd10cm"], t.condition_systems["snomed"]
    assert t.translation(icd, "F43.10").code == "47505003"  # type: ignore[union-attr]
    assert t.translation(sct, "47505003").code == "F43.10"  # type: ignore[union-attr]
    for code in ("F43.12", "F33.2", "G90.511"):
        assert t.translation(icd, code) is None


def test_drug_codes_follow_reference_marks() -> None:
    t = terminology()
    rx = {name: [(c.code, c.mark) for c in t.drug(name)[1] if "rxnorm" in c.system] for name in t.drugs}
    assert rx["ketamine"] == [("6130", "C")] and rx["ondansetron"] == [("26225", "V")]
    assert rx["midazolam"] == [("6960", "V")] and rx["lidocaine"] == [("6387", "V")]
    assert rx["clonidine"] == [("2599", "C")]
    for local in ("esketamine", "glycopyrrolate", "magnesium-sulfate", "dexmedetomidine"):
        assert rx[local] == []
