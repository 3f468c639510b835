"""The clinic's local CodeSystems as FHIR resources, so every local code the service emits resolves.

Profile: R4 core, http://hl7.org/fhir/StructureDefinition/CodeSystem. URL `{base}/CodeSystem/{name}`; concepts
  are every `local` code in the terminology files, sorted by code.
"""

from __future__ import annotations

from mappings import ids, profiles
from mappings.codes import terminology
from mappings.context import MappingContext
from mappings.models import Resource, validate

_PREFIX = "{base}/CodeSystem/"


def local_concepts() -> dict[str, dict[str, str]]:
    """name -> {code: display} of every local code."""
    t = terminology()
    out: dict[str, dict[str, str]] = {}
    codes = {
        (c.system, c.code): c.display
        for table in (t.drugs, t.routes, t.adverse_events)
        for _, cs, _ in table.values()
        for c in cs
    }
    for v in t.vitals.values():
        codes.update({(c.system, c.code): c.display for c in v.codes})
    for inst in t.instruments.values():
        codes.update(
            {
                (c.system, c.code): c.display
                for c in (*(i.code for i in inst.items), inst.total, *((inst.panel,) if inst.panel else ()))
            }
        )
    for bands in t.bands.values():
        codes.update({(b.code.system, b.code.code): b.code.display for b in bands})
    codes.update({(c.system, c.code): c.display for c in t.local_codes.values()})
    for (system, code), display in codes.items():
        if system.startswith(_PREFIX):
            out.setdefault(system.removeprefix(_PREFIX), {})[code] = display or code
    return out


def codesystem_dict(name: str, concepts: dict[str, str], ctx: MappingContext) -> dict:
    """One local CodeSystem."""
    title = terminology().codesystem_titles.get(name, name)
    out = ids.head(ctx, "codesystem", profiles.CODE_SYSTEM, name)
    out["url"] = f"{ctx.base_url}/CodeSystem/{name}"
    out["name"] = "".join(p.capitalize() for p in name.split("-"))
    out["title"] = title
    out["status"] = "active"
    out["caseSensitive"] = True
    out["content"] = "complete"
    out["count"] = len(concepts)
    out["concept"] = [{"code": c, "display": concepts[c]} for c in sorted(concepts)]
    return out


def codesystem_dicts(ctx: MappingContext) -> list[dict]:
    """Every local CodeSystem, by name."""
    return [codesystem_dict(n, cs, ctx) for n, cs in sorted(local_concepts().items())]


def to_fhir_codesystems(ctx: MappingContext) -> list[Resource]:
    """All local CodeSystems (validated)."""
    return [validate(d) for d in codesystem_dicts(ctx)]
