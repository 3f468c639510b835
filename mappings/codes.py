"""Load the terminology data files in mappings/terminology once; every lookup of an unknown value raises.

Each file is headed by its code-system URL(s) (`systems`); `{base}` in a URL is the clinic base URL, filled in
when a Coding is written. Every entry carries a verification mark: V or C (from the reference, or from the
authoritative source named beside it) or `local` (the clinic's own CodeSystem). Loading fails on any other
mark, so an UNVERIFIED code can never ship.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from mappings.errors import MappingError, UnknownCodeError

DIR = Path(__file__).parent / "terminology"
MARKS = frozenset({"V", "C", "local"})


@dataclass(frozen=True, slots=True)
class Code:
    """One code from a terminology file; `system` may contain `{base}`."""

    system: str
    code: str
    display: str | None
    mark: str

    def coding(self, base: str) -> dict[str, str]:
        """The FHIR Coding, with the clinic base URL filled in."""
        out = {
            "system": self.system.replace("{base}", base) if "{" in self.system else self.system,
            "code": self.code,
        }
        if self.display:
            out["display"] = self.display
        return out


@dataclass(frozen=True, slots=True)
class Unit:
    """A clinic dose/rate unit and its UCUM code; weight-based units name their absolute counterpart."""

    ucum: str
    mark: str
    per_weight: bool = False
    absolute: str | None = None


@dataclass(frozen=True, slots=True)
class Vital:
    """How one measure becomes an Observation."""

    text: str
    codes: tuple[Code, ...]
    unit: str
    category: str | None
    profile: str
    components: tuple[tuple[str, str, tuple[Code, ...]], ...] = ()


@dataclass(frozen=True, slots=True)
class Item:
    """One questionnaire item: its code and the text shown (never licensed wording)."""

    code: Code
    text: str


@dataclass(frozen=True, slots=True)
class Instrument:
    """An outcome instrument: shape from instruments.json (ingest's), codes from instrument_codes.json."""

    key: str
    title: str
    items: tuple[Item, ...]
    min: int
    max: int
    scoring: str
    self_report: bool
    panel: Code | None
    total: Code
    answers: tuple[tuple[int, Code], ...] | None
    safety_item: int | None
    safety_above: int | None


@dataclass(frozen=True, slots=True)
class Band:
    """An inclusive total-score range and its interpretation code."""

    low: int
    high: int
    code: Code


def _code(d: dict[str, Any], systems: dict[str, str], where: str) -> Code:
    mark = d.get("mark")
    if mark not in MARKS:
        raise MappingError(f"{where}: mark {mark!r} is not V, C or local; UNVERIFIED codes never ship")
    return Code(
        systems[d["system"]] if "system" in d else systems["local"], d["code"], d.get("display"), mark
    )


def _load(name: str) -> dict[str, Any]:
    with (DIR / name).open(encoding="utf-8") as f:
        return json.load(f)


class Terminology:
    """All terminology tables, parsed and cross-checked."""

    def __init__(self) -> None:
        self.drugs = self._coded_table("drugs.json", ("rxnorm", "local"))
        self.routes = self._coded_table("routes.json", ("snomed", "local"))
        self.adverse_events = self._coded_table("adverse_events.json", ("local",))
        self._load_units()
        self._load_vitals()
        self._load_instruments()
        self._load_bands()
        self._load_conditions()
        self._load_fixed()

    # -- tables ---------------------------------------------------------------------------------------------
    def _coded_table(self, name: str, keys: tuple[str, ...]) -> dict[str, tuple[str, tuple[Code, ...], dict]]:
        data = _load(name)
        systems = data["systems"]
        table: dict[str, tuple[str, tuple[Code, ...], dict]] = {}
        for value, entry in data["entries"].items():
            codes = tuple(
                _code({"system": k, **entry[k]}, systems, f"{name}:{value}") for k in keys if k in entry
            )
            if not codes:
                raise MappingError(f"{name}:{value} has no code")
            text = entry.get("text") or codes[0].display or value
            table[value] = (text, codes, entry)
        return table

    def _load_units(self) -> None:
        data = _load("units.json")
        self.units = {
            group: {
                k: Unit(v["ucum"], v["mark"], v.get("per_weight", False), v.get("absolute"))
                for k, v in data[group].items()
            }
            for group in ("dose", "rate", "other")
        }
        for group in self.units.values():
            for u in group.values():
                if u.mark not in MARKS:
                    raise MappingError(f"units.json: {u.ucum} has mark {u.mark!r}")

    def _load_vitals(self) -> None:
        data = _load("vitals.json")
        systems, profiles = data["systems"], data["profiles"]
        self.vitals: dict[str, Vital] = {}
        for name, e in data["entries"].items():
            codes = tuple(_code(c, systems, f"vitals.json:{name}") for c in e["codes"])
            comps = tuple(
                (k, c["text"], tuple(_code(x, systems, f"vitals.json:{name}.{k}") for x in c["codes"]))
                for k, c in e.get("components", {}).items()
            )
            if e["unit"] not in self.units["other"]:
                raise MappingError(f"vitals.json:{name}: unit {e['unit']} missing from units.json")
            self.vitals[name] = Vital(
                e["text"], codes, e["unit"], e["category"], profiles[e["profile"]], comps
            )
        self.profiles = profiles

    def _load_instruments(self) -> None:
        shapes = _load("instruments.json")  # owned by ingest: items, min, max, scoring
        data = _load("instrument_codes.json")
        systems = data["systems"]
        self.instruments: dict[str, Instrument] = {}
        for key, shape in shapes.items():
            e = data["entries"].get(key)
            if e is None:
                raise MappingError(f"instrument {key!r} has no codes in instrument_codes.json")
            n, title = int(shape["items"]), e["title"]
            if e["items"] == "local":
                items = tuple(
                    Item(
                        Code(systems["local"], f"{key}.q{i}", f"{title} item {i}", "local"),
                        f"{title} item {i}",
                    )
                    for i in range(1, n + 1)
                )
            else:
                items = tuple(
                    Item(_code(it, systems, f"{key}.items"), it.get("text") or f"{title} item {i}")
                    for i, it in enumerate(e["items"], 1)
                )
            if len(items) != n:
                raise MappingError(f"{key}: {len(items)} item codes but instruments.json says {n} items")
            answers = None
            if e.get("answers"):
                answers = tuple((int(a["score"]), _code(a, systems, f"{key}.answers")) for a in e["answers"])
                if [s for s, _ in answers] != list(range(int(shape["min"]), int(shape["max"]) + 1)):
                    raise MappingError(f"{key}: answer list does not cover {shape['min']}..{shape['max']}")
            if shape["scoring"] not in ("sum", "mean"):
                raise MappingError(f"{key}: unknown scoring {shape['scoring']!r}")
            safety = e.get("safety_item") or {}
            self.instruments[key] = Instrument(
                key,
                title,
                items,
                int(shape["min"]),
                int(shape["max"]),
                shape["scoring"],
                bool(e["self_report"]),
                _code(e["panel"], systems, f"{key}.panel") if e.get("panel") else None,
                _code(e["total"], systems, f"{key}.total"),
                answers,
                safety.get("item"),
                safety.get("above"),
            )

    def _load_bands(self) -> None:
        data = _load("severity_bands.json")
        systems = data["systems"]
        self.bands: dict[str, tuple[Band, ...]] = {}
        for key, e in data["entries"].items():
            if e["mark"] not in MARKS:
                raise MappingError(f"severity_bands.json:{key} has mark {e['mark']!r}")
            inst = self.instruments[key]
            bands = tuple(
                Band(b["low"], b["high"], Code(systems["local"], b["code"], b["display"], "local"))
                for b in e["bands"]
            )
            top = inst.max * len(inst.items) if inst.scoring == "sum" else inst.max
            edges = [inst.min * (len(inst.items) if inst.scoring == "sum" else 1)]
            for b in bands:
                if b.low != edges[-1]:
                    raise MappingError(f"severity_bands.json:{key}: gap or overlap at {b.low}")
                edges.append(b.high + 1)
            if edges[-1] != top + 1:
                raise MappingError(f"severity_bands.json:{key}: bands end at {edges[-1] - 1}, not {top}")
            self.bands[key] = bands

    def _load_conditions(self) -> None:
        data = _load("conditions.json")
        self.condition_systems: dict[str, str] = {tok: data["systems"][tok] for tok in data["record_systems"]}
        self.translations: dict[tuple[str, str], Code] = {}
        for t in data["translations"]:
            if t["mark"] not in MARKS:
                raise MappingError(f"conditions.json: translation mark {t['mark']!r}")
            icd = _code({"system": "icd10cm", **t["icd10cm"]}, data["systems"], "conditions.json")
            sct = _code({"system": "snomed", **t["snomed"]}, data["systems"], "conditions.json")
            self.translations[(icd.system, icd.code)] = sct
            self.translations[(sct.system, sct.code)] = icd

    def _load_fixed(self) -> None:
        clinical = _load("clinical_codes.json")
        self.clinical = {
            k: (_code(v, clinical["systems"], f"clinical_codes.json:{k}"), v["text"])
            for k, v in clinical["entries"].items()
        }
        fhir = _load("fhir_codes.json")
        self.fhir_systems: dict[str, str] = fhir["systems"]
        self.fhir_codes = {
            (sys, code): _code({"system": sys, "code": code, **v}, fhir["systems"], f"fhir:{code}")
            for sys, codes in fhir["entries"].items()
            for code, v in codes.items()
        }
        local = _load("local_codes.json")
        self.local_codes = {
            (sys, code): _code({"system": sys, "code": code, **v}, local["systems"], f"local:{code}")
            for sys, codes in local["entries"].items()
            for code, v in codes.items()
        }
        self.codesystem_titles: dict[str, str] = local["codesystem_titles"]
        self.statuses: dict[str, dict[str, str]] = {
            k: v for k, v in _load("statuses.json").items() if isinstance(v, dict) and k != "systems"
        }

    # -- lookups (each raises UnknownCodeError) -------------------------------------------------------------
    def drug(self, name: str) -> tuple[str, tuple[Code, ...], bool]:
        """Text, codes and whether it is a primary treatment, for a clinic drug code (not `rxnorm:`)."""
        if name not in self.drugs:
            raise UnknownCodeError("drug", name)
        text, codes, entry = self.drugs[name]
        return text, codes, bool(entry.get("primary_treatment"))

    def route(self, name: str) -> tuple[str, tuple[Code, ...]]:
        """Text and FHIR codes for a clinic route (the NCI code is for C-CDA and not returned)."""
        if name not in self.routes:
            raise UnknownCodeError("route", name)
        text, codes, _ = self.routes[name]
        return text, codes

    def unit(self, group: str, unit: str) -> Unit:
        """A clinic unit in `dose`, `rate` or `other`."""
        try:
            return self.units[group][unit]
        except KeyError:
            raise UnknownCodeError(f"{group} unit", unit) from None

    def vital(self, measure: str) -> Vital:
        """The Observation recipe for one measure."""
        if measure not in self.vitals:
            raise UnknownCodeError("vital-sign measure", measure)
        return self.vitals[measure]

    def instrument(self, key: str) -> Instrument:
        """An outcome instrument."""
        if key not in self.instruments:
            raise UnknownCodeError("instrument", key)
        return self.instruments[key]

    def band(self, key: str, total: float) -> Band | None:
        """The severity band of a total, or None when the reference gives no bands for the instrument."""
        for b in self.bands.get(key, ()):
            if b.low <= total <= b.high:
                return b
        if key in self.bands:
            raise UnknownCodeError(f"{key} total", total)
        return None

    def adverse_event(self, kind: str) -> tuple[str, tuple[Code, ...]]:
        """Text and event codes for an adverse-event kind."""
        if kind not in self.adverse_events:
            raise UnknownCodeError("adverse-event kind", kind)
        text, codes, _ = self.adverse_events[kind]
        return text, codes

    def condition_system(self, token: str) -> str:
        """The FHIR system URI of a record's `icd10cm`/`snomed` token; a URI passes through."""
        if token in self.condition_systems:
            return self.condition_systems[token]
        if token.startswith(("http://", "https://", "urn:")):
            return token
        raise UnknownCodeError("code system", token)

    def translation(self, system: str, code: str) -> Code | None:
        """The same concept in the other system (ICD-10-CM <-> SNOMED CT), when the reference supports it."""
        return self.translations.get((system, code))

    def fixed(self, name: str) -> tuple[Code, str]:
        """A fixed clinical code and its text (encounter type, procedure, no-known-allergy)."""
        return self.clinical[name]

    def fhir(self, system: str, code: str) -> Code:
        """An HL7 infrastructure code (category, participation type, ...)."""
        try:
            return self.fhir_codes[(system, code)]
        except KeyError:
            raise UnknownCodeError(system, code) from None

    def local(self, system: str, code: str) -> Code:
        """A code of one of the clinic's small local CodeSystems (timing, flags, roles, categories)."""
        try:
            return self.local_codes[(system, code)]
        except KeyError:
            raise UnknownCodeError(system, code) from None

    def status(self, table: str, value: str) -> str:
        """A clinic status mapped to its FHIR code."""
        try:
            return self.statuses[table][value]
        except KeyError:
            raise UnknownCodeError(f"{table} status", value) from None

    def all_codes(self) -> set[tuple[str, str, str]]:
        """Every (system, code, mark) the files define: what tests check emitted codings against."""
        codes: set[Code] = set()
        for table in (self.drugs, self.routes, self.adverse_events):
            for _, cs, _ in table.values():
                codes.update(cs)
        for v in self.vitals.values():
            codes.update(v.codes)
            for _, _, cs in v.components:
                codes.update(cs)
        for inst in self.instruments.values():
            codes.update(i.code for i in inst.items)
            codes.update(c for _, c in inst.answers or ())
            codes.update(c for c in (inst.panel, inst.total) if c)
        for bands in self.bands.values():
            codes.update(b.code for b in bands)
        codes.update(self.translations.values())
        codes.update(c for c, _ in self.clinical.values())
        codes.update(self.fhir_codes.values())
        codes.update(self.local_codes.values())
        return {(c.system, c.code, c.mark) for c in codes}


@cache
def terminology() -> Terminology:
    """The terminology tables, read from disk once per process."""
    return Terminology()
