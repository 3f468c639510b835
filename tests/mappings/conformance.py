"""Checks a schema cannot make: terminology membership, UCUM units, US Core must-support elements, bytes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

from mappings.codes import terminology
from mappings.models import validate
from mappings.serialize import dict_bytes, to_json_bytes

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = ROOT.parent / "shared" / "reference" / "fhir-r4-schema" / "fhir.schema.json"
BASE = "https://clinic.example.org/fhir"
UCUM = "http://unitsofmeasure.org"
US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
CORE = "http://hl7.org/fhir/StructureDefinition/"


# -- the official R4 JSON schema -------------------------------------------------------------------------
@cache
def _schema() -> dict:
    if not SCHEMA_PATH.exists():  # CI has ../shared beside the clone; elsewhere the check cannot run
        pytest.skip(f"the official R4 JSON schema is not beside the clone ({SCHEMA_PATH})")
    with SCHEMA_PATH.open(encoding="utf-8") as f:
        return json.load(f)


@cache
def schema_validator(resource_type: str) -> jsonschema.Draft6Validator:
    """A Draft-6 validator for one resource type (the whole schema, rooted at that type's definition)."""
    schema = {k: v for k, v in _schema().items() if k not in ("oneOf", "discriminator")}
    schema["$ref"] = f"#/definitions/{resource_type}"
    return jsonschema.Draft6Validator(schema)


def schema_errors(resource: dict) -> list[str]:
    """Every way `resource` breaks the official R4 JSON schema."""
    v = schema_validator(resource["resourceType"])
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in v.iter_errors(resource)]


# -- walking ---------------------------------------------------------------------------------------------
def walk(node: Any, path: str = "") -> Iterator[tuple[str, dict]]:
    """Every JSON object in `node`, with its path."""
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from walk(v, f"{path}.{k}" if path else k)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk(v, f"{path}[{i}]")


def codings(resource: dict) -> Iterator[tuple[str, dict]]:
    """Every Coding (an object with system and code, not a Quantity or Identifier)."""
    for path, node in walk(resource):
        if "code" in node and "system" in node and "value" not in node and not path.endswith("identifier"):
            yield path, node


# -- terminology -----------------------------------------------------------------------------------------
@cache
def known_codes() -> dict[tuple[str, str], str]:
    """(system, code) -> mark of every code in the terminology files, with the test base URL filled in."""
    return {(s.replace("{base}", BASE), c): m for s, c, m in terminology().all_codes()}


def record_codes(record: Any) -> set[tuple[str, str]]:
    """Codes the clinic itself supplied in the record (passed through, not chosen by the mappers)."""
    t = terminology()
    out: set[tuple[str, str]] = set()
    for _, node in walk(record):
        if "code" in node and "system" in node and isinstance(node.get("code"), str):
            sys_ = node["system"]
            mapped = {"rxnorm": "http://www.nlm.nih.gov/research/umls/rxnorm", **t.condition_systems}.get(
                sys_, sys_
            )
            code = node["code"].strip()
            out.add((mapped, code.upper() if sys_ == "icd10cm" else code))
        if isinstance(node.get("drug"), str) and node["drug"].startswith("rxnorm:"):
            out.add(("http://www.nlm.nih.gov/research/umls/rxnorm", node["drug"].removeprefix("rxnorm:")))
        if isinstance(node.get("language"), str):
            out.add(("urn:ietf:bcp:47", node["language"].strip()))
    return out


def code_problems(resource: dict, record: Any = None) -> list[str]:
    """Codings neither from the terminology files nor passed through from the record; any UNVERIFIED mark."""
    known = known_codes()
    passed = record_codes(record) if record is not None else set()
    problems = []
    for path, c in codings(resource):
        key = (c["system"], c["code"])
        if key in passed:
            continue
        mark = known.get(key)
        if mark is None:
            problems.append(f"{path}: {key} is not in mappings/terminology")
        elif mark not in ("V", "C", "local"):
            problems.append(f"{path}: {key} has mark {mark}")
        if c["system"].startswith(BASE) and not c["system"].startswith(BASE + "/CodeSystem/"):
            problems.append(f"{path}: local system outside {BASE}/CodeSystem/")
    return problems


@cache
def ucum_codes() -> frozenset[str]:
    """Every UCUM code units.json allows."""
    return frozenset(u.ucum for group in terminology().units.values() for u in group.values())


def ucum_problems(resource: dict) -> list[str]:
    """Quantities must be UCUM-coded with a code from units.json and a human unit."""
    problems = []
    for path, node in walk(resource):
        if (
            "value" in node
            and isinstance(node.get("value"), int | float)
            and not isinstance(node["value"], bool)
        ) and (path.endswith(("valueQuantity", "dose", "rateQuantity")) or "code" in node):
            if node.get("system") != UCUM:
                problems.append(f"{path}: quantity without the UCUM system")
            elif node.get("code") not in ucum_codes():
                problems.append(f"{path}: {node.get('code')!r} is not a UCUM code from units.json")
            elif not node.get("unit"):
                problems.append(f"{path}: quantity without a human unit")
    return problems


# -- must support ----------------------------------------------------------------------------------------
def _has(resource: dict, path: str) -> bool:
    nodes: list[Any] = [resource]
    for part in path.split("."):
        nxt: list[Any] = []
        for n in nodes:
            v = n.get(part) if isinstance(n, dict) else None
            if isinstance(v, list):
                nxt.extend(v)
            elif v is not None:
                nxt.append(v)
        if not nxt:
            return False
        nodes = nxt
    return True


def _has_coding(concepts: Any, system: str, code: str) -> bool:
    concepts = concepts if isinstance(concepts, list) else [concepts]
    return any(
        c.get("system") == system and c.get("code") == code
        for cc in concepts
        if isinstance(cc, dict)
        for c in cc.get("coding", [])
    )


CAT = "http://terminology.hl7.org/CodeSystem/observation-category"
VITAL_PATHS = ("status", "category", "code", "subject", "effectiveDateTime")
MUST_SUPPORT: dict[str, tuple[str, ...]] = {
    US_CORE + "us-core-patient": (
        "identifier.system",
        "identifier.value",
        "name.family",
        "gender",
        "birthDate",
    ),
    US_CORE + "us-core-allergyintolerance": ("clinicalStatus", "code", "patient"),
    US_CORE + "us-core-practitioner": ("identifier.system", "identifier.value", "name.family"),
    US_CORE + "us-core-organization": ("identifier", "active", "name"),
    US_CORE + "us-core-encounter": (
        "identifier.system",
        "identifier.value",
        "status",
        "class",
        "type",
        "subject",
        "participant.type",
        "participant.individual",
        "period",
        "reasonCode",
        "reasonReference",
        "serviceProvider",
    ),
    US_CORE + "us-core-procedure": ("status", "code", "subject", "encounter"),
    US_CORE + "us-core-condition-encounter-diagnosis": (
        "category",
        "code",
        "subject",
        "encounter",
        "clinicalStatus",
    ),
    US_CORE + "us-core-medication": ("code",),
    US_CORE + "us-core-questionnaireresponse": (
        "questionnaire",
        "status",
        "subject",
        "authored",
        "item.linkId",
        "item.answer",
    ),
    US_CORE + "us-core-observation-screening-assessment": (
        "status",
        "category",
        "code",
        "subject",
        "effectiveDateTime",
        "valueQuantity.value",
    ),
    US_CORE + "us-core-blood-pressure": (*VITAL_PATHS, "component.valueQuantity.value"),
    US_CORE + "us-core-heart-rate": (*VITAL_PATHS, "valueQuantity.value"),
    US_CORE + "us-core-respiratory-rate": (*VITAL_PATHS, "valueQuantity.value"),
    US_CORE + "us-core-pulse-oximetry": (*VITAL_PATHS, "valueQuantity.value"),
    US_CORE + "us-core-body-temperature": (*VITAL_PATHS, "valueQuantity.value"),
    US_CORE + "us-core-body-weight": (*VITAL_PATHS, "valueQuantity.value"),
    CORE + "vitalsigns": (*VITAL_PATHS, "valueQuantity.value"),
    "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire": (
        "url",
        "status",
        "item.linkId",
        "item.type",
    ),
}
FIXED_UNIT = {
    US_CORE + "us-core-heart-rate": "/min",
    US_CORE + "us-core-respiratory-rate": "/min",
    US_CORE + "us-core-pulse-oximetry": "%",
    US_CORE + "us-core-body-temperature": "Cel",
    US_CORE + "us-core-body-weight": "kg",
}


def profile_problems(resource: dict) -> list[str]:
    """US Core (and core vitals / SDC) must-support and fixed-value checks for every profile claimed."""
    problems = []
    profiles = resource.get("meta", {}).get("profile", [])
    if len(profiles) != 1:
        problems.append(f"expected exactly one meta.profile, got {profiles}")
    for profile in profiles:
        if not profile.startswith((US_CORE, CORE, "http://hl7.org/fhir/uv/sdc/")):
            problems.append(f"unexpected profile {profile}")
        core_type = profile.removeprefix(CORE) if profile.startswith(CORE) else None
        if core_type not in (None, "vitalsigns", resource["resourceType"]):
            problems.append(f"core profile {profile} on a {resource['resourceType']}")
        for path in MUST_SUPPORT.get(profile, ()):
            if not _has(resource, path):
                problems.append(f"{profile.rsplit('/', 1)[-1]}: must-support {path} missing")
        if profile in FIXED_UNIT and resource.get("valueQuantity", {}).get("code") != FIXED_UNIT[profile]:
            problems.append(f"{profile}: unit must be {FIXED_UNIT[profile]}")
        is_vital = "vital" in profile or profile.startswith(US_CORE + "us-core-b") or profile in FIXED_UNIT
        if is_vital and not _has_coding(resource.get("category"), CAT, "vital-signs"):
            problems.append(f"{profile}: category vital-signs missing")
        if profile == US_CORE + "us-core-blood-pressure":
            comps = {c["code"]["coding"][0]["code"]: c for c in resource.get("component", [])}
            for code in ("8480-6", "8462-4"):
                if comps.get(code, {}).get("valueQuantity", {}).get("code") != "mm[Hg]":
                    problems.append(f"blood pressure component {code} missing or not mm[Hg]")
        if profile == US_CORE + "us-core-pulse-oximetry":
            codes = {c["code"] for c in resource["code"]["coding"]}
            if not {"2708-6", "59408-5"} <= codes:
                problems.append("pulse oximetry needs both 2708-6 and 59408-5")
        if profile == US_CORE + "us-core-observation-screening-assessment" and not _has_coding(
            resource.get("category"), CAT, "survey"
        ):
            problems.append("screening assessment needs category survey")
        if (
            profile == US_CORE + "us-core-procedure"
            and resource.get("status")
            in (
                "completed",
                "in-progress",
            )
            and "performedPeriod" not in resource
        ):
            problems.append("us-core-7: performed[x] required when completed or in-progress")
        if profile == US_CORE + "us-core-condition-encounter-diagnosis" and not _has_coding(
            resource.get("category"),
            "http://terminology.hl7.org/CodeSystem/condition-category",
            "encounter-diagnosis",
        ):
            problems.append("condition category encounter-diagnosis missing")
    if resource["resourceType"] != "Provenance" and "identifier" not in resource:
        problems.append("no clinic identifier")
    return problems


def canonical_problems(resource: dict) -> list[str]:
    """The dict must already be in the models' canonical form: fast bytes == model bytes, no empties."""
    problems = []
    for path, node in walk(resource):
        for k, v in node.items():
            if v is None or v == [] or v == {} or v == "":
                problems.append(f"{path}.{k}: empty value")
    model = validate(resource)
    if dict_bytes(resource) != to_json_bytes(model):
        problems.append("dict bytes differ from the model's bytes")
    return problems


def all_problems(resource: dict, record: Any = None, schema: bool = True) -> list[str]:
    """Every check on one produced resource dict."""
    problems = list(canonical_problems(resource))
    if schema:
        problems += schema_errors(orjson.loads(dict_bytes(resource)))
    problems += code_problems(resource, record)
    problems += ucum_problems(resource)
    problems += profile_problems(resource)
    return problems
