"""The search-parameter table (search_params.json) as typed definitions: one source for index, search
and CapabilityStatement, so what is advertised, indexed and searched cannot drift apart."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

TABLE = Path(__file__).with_name("search_params.json")
TYPES = ("token", "string", "date", "reference", "uri")
# Served from the resource table's own columns for every type, not from the index.
COMMON = {"_id": "token", "_lastUpdated": "date"}


@dataclass(frozen=True, slots=True)
class SearchParam:
    """One parameter of one resource type: its FHIR type and the element paths it reads."""

    resource_type: str
    name: str
    type: str
    paths: tuple[tuple[str, ...], ...]
    targets: frozenset[str] | None = None  # reference parameters: allowed target types (None = any)

    @property
    def index_type(self) -> str:
        """The index table holding its values (a uri is an exact token without a system)."""
        return "token" if self.type == "uri" else self.type


@cache
def definitions() -> dict[str, dict[str, SearchParam]]:
    """resource type -> parameter name -> definition, read once from the data table."""
    raw = json.loads(TABLE.read_text(encoding="utf-8"))
    out: dict[str, dict[str, SearchParam]] = {}
    for resource_type, params in raw.items():
        if resource_type.startswith("_"):
            continue
        out[resource_type] = {
            name: _param(resource_type, name, spec) for name, spec in sorted(params.items())
        }
    return out


def params_for(resource_type: str) -> dict[str, SearchParam]:
    return definitions().get(resource_type, {})


def reference_params_to(target_type: str) -> list[SearchParam]:
    """Reference parameters of every type that may point at `target_type` (for `_revinclude`)."""
    return [
        p
        for params in definitions().values()
        for p in params.values()
        if p.type == "reference" and (p.targets is None or target_type in p.targets)
    ]


def _param(resource_type: str, name: str, spec: dict[str, object]) -> SearchParam:
    kind = spec.get("type")
    if kind not in TYPES:
        raise ValueError(f"search_params.json: {resource_type}.{name} has unknown type {kind!r}")
    raw_paths = spec["path"]
    paths = [raw_paths] if isinstance(raw_paths, str) else list(raw_paths)  # type: ignore[arg-type]
    targets = spec.get("target")
    return SearchParam(
        resource_type,
        name,
        str(kind),
        tuple(tuple(str(p).split(".")) for p in paths),
        frozenset(targets) if isinstance(targets, list) else None,
    )
