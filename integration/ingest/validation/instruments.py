"""Loads the questionnaire table (mappings/terminology/instruments.json): clinical data, not code."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

SCORINGS = ("sum", "mean")


@dataclass(frozen=True, slots=True)
class Instrument:
    """One outcome questionnaire: items q1..qN, each scored min..max, totalled by `scoring`."""

    code: str
    name: str
    items: int
    min: int
    max: int
    scoring: str  # "sum" (an integer total) or "mean" (BPI severity: a number, within 0.05)
    keys: tuple[str, ...]
    key_set: frozenset[str]


def parse_instruments(table: object) -> dict[str, Instrument]:
    """Build the instrument table from its JSON form; a malformed data file fails loudly at import."""
    if not isinstance(table, dict) or not table:
        raise ValueError("instruments.json: expected a non-empty object of instruments")
    out: dict[str, Instrument] = {}
    for code, row in table.items():
        if not isinstance(row, dict) or not {"name", "items", "min", "max", "scoring"} <= set(row):
            raise ValueError(f"instruments.json: {code!r} needs name, items, min, max and scoring")
        items, lo, hi, scoring = row["items"], row["min"], row["max"], row["scoring"]
        numbers_ok = all(type(n) is int for n in (items, lo, hi)) and items >= 1 and lo <= hi
        if not numbers_ok or scoring not in SCORINGS:
            raise ValueError(f"instruments.json: {code!r} has a bad items/min/max/scoring")
        keys = tuple(f"q{i}" for i in range(1, items + 1))
        out[code] = Instrument(code, str(row["name"]), items, lo, hi, scoring, keys, frozenset(keys))
    return out


def instruments_path() -> Path:
    """Where the `mappings` package keeps the table, found without importing it (it loads FHIR models)."""
    spec = importlib.util.find_spec("mappings")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations))) / "terminology" / "instruments.json"
    return Path(__file__).resolve().parents[3] / "mappings" / "terminology" / "instruments.json"


def load_instruments() -> dict[str, Instrument]:
    """Read the shipped table."""
    return parse_instruments(json.loads(instruments_path().read_text(encoding="utf-8")))


INSTRUMENTS: dict[str, Instrument] = load_instruments()
