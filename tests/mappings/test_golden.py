"""Golden files: each clinic record beside the resources it must become, compared parsed (not as text).

Regenerate with `pytest tests/mappings --update-golden` (or UPDATE_GOLDEN=1), then read every changed
expected file and check it clinically before committing it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mappings.dispatch import map_record_dicts, static_dicts
from tests.mappings.conformance import all_problems
from tests.mappings.conftest import make_ctx

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(GOLDEN.glob("*/*.input.json"))


def _write(path: Path, resources: list[dict]) -> None:
    path.write_text(
        json.dumps(resources, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8"
    )


def _check(expected_path: Path, produced: list[dict], update: bool) -> None:
    if update:
        _write(expected_path, produced)
    assert expected_path.exists(), f"{expected_path.name} missing: run with --update-golden and review it"
    expected = json.loads(expected_path.read_text(encoding="utf-8"))
    assert [(r["resourceType"], r["id"]) for r in produced] == [
        (r["resourceType"], r["id"]) for r in expected
    ]
    for got, want in zip(produced, expected, strict=True):
        assert got == want, f"{got['resourceType']}/{got['id']} differs from {expected_path.name}"


@pytest.mark.parametrize("case", CASES, ids=[f"{c.parent.name}/{c.name.split('.')[0]}" for c in CASES])
def test_record_golden(case: Path, update_golden: bool) -> None:
    kind = case.parent.name
    record = json.loads(case.read_text(encoding="utf-8"))
    produced = map_record_dicts(kind, record, make_ctx())
    _check(case.with_name(case.name.replace(".input.", ".expected.")), produced, update_golden)


def test_static_golden(update_golden: bool) -> None:
    _check(GOLDEN / "static" / "clinic.expected.json", static_dicts(make_ctx()), update_golden)


@pytest.mark.parametrize("case", CASES, ids=[f"{c.parent.name}/{c.name.split('.')[0]}" for c in CASES])
def test_golden_resources_conform(case: Path, schema_available: None) -> None:
    """Every golden resource: official R4 schema, terminology, UCUM, must-support, canonical bytes."""
    record = json.loads(case.read_text(encoding="utf-8"))
    for resource in map_record_dicts(case.parent.name, record, make_ctx()):
        assert all_problems(resource, record) == [], f"{resource['resourceType']}/{resource['id']}"


def test_static_resources_conform(schema_available: None) -> None:
    for resource in static_dicts(make_ctx()):
        assert all_problems(resource) == [], f"{resource['resourceType']}/{resource['id']}"
