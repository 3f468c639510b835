"""The outcome catalogue: each instrument's codes, scale and bands (from the mapping terminology) joined with
the summary's own response/remission rules (outcome_rules.json)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from integration.summaries.model import Band
from mappings.codes import terminology

_RULES = Path(__file__).with_name("outcome_rules.json")


@dataclass(frozen=True, slots=True)
class Remission:
    """`below` (score < n) or `at_most` (score <= n); `assessed` only when the threshold's mark allows it."""

    below: float | None
    at_most: float | None
    mark: str
    definition: str
    assessed: bool

    def met(self, score: float) -> bool:
        if self.below is not None:
            return score < self.below
        return self.at_most is not None and score <= self.at_most


@dataclass(frozen=True, slots=True)
class InstrumentRule:
    key: str
    title: str
    role: str
    code_system: str
    code: str
    loinc: str | None
    scale_max: float
    bands: tuple[Band, ...]
    remission: Remission | None


@dataclass(frozen=True, slots=True)
class Catalogue:
    """Instruments by (system, code) of their total-score Observation, plus the response rule."""

    by_code: dict[tuple[str, str], InstrumentRule]
    response_min_reduction: float
    response_definition: str


_LOINC = "http://loinc.org"


def load_catalogue(base_url: str, rules_path: Path = _RULES) -> Catalogue:
    """Join terminology and rules; an instrument without a rule, or a rule without an instrument, fails."""
    rules = json.loads(rules_path.read_text())
    t = terminology()
    if set(rules["instruments"]) != set(t.instruments):
        raise ValueError(
            f"outcome_rules.json instruments {sorted(rules['instruments'])} differ from the terminology's"
            f" {sorted(t.instruments)}"
        )
    allowed = set(rules["assess_marks"])
    by_code: dict[tuple[str, str], InstrumentRule] = {}
    for key, inst in t.instruments.items():
        rule = rules["instruments"][key]
        coding = inst.total.coding(base_url)
        per_item = inst.max if inst.scoring == "mean" else inst.max * len(inst.items)
        bands = tuple(Band(b.low, b.high, b.code.display or b.code.code) for b in t.bands.get(key, ()))
        rem = rule.get("remission")
        remission = (
            Remission(
                rem.get("below"), rem.get("at_most"), rem["mark"], rem["definition"], rem["mark"] in allowed
            )
            if rem
            else None
        )
        by_code[(coding["system"], coding["code"])] = InstrumentRule(
            key=key,
            title=inst.title,
            role=rule["role"],
            code_system=coding["system"],
            code=coding["code"],
            loinc=coding["code"] if coding["system"] == _LOINC else None,
            scale_max=float(per_item),
            bands=bands,
            remission=remission,
        )
    response = rules["response"]
    return Catalogue(by_code, float(response["min_reduction_percent"]), response["definition"])


@cache
def catalogue(base_url: str) -> Catalogue:
    """The catalogue for this clinic base URL, built once per process."""
    return load_catalogue(base_url)
