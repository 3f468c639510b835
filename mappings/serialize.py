"""R4 JSON bytes for storage: validate once with the models, then store bytes, never re-validating.

`to_json_bytes(resource)` dumps a model (exclude_none, sorted keys): canonical but slow (a model round trip).
`map_record_bytes` is the intake's fast path: it validates each built dict with its model and serializes the
dict itself with orjson, which gives the same bytes (the dicts are built in the models' canonical form; the
test suite checks byte equality on every golden and property-test resource).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from mappings.context import MappingContext
from mappings.dispatch import map_record_dicts
from mappings.models import Resource, validate

_OPTS = orjson.OPT_SORT_KEYS


def to_json_bytes(resource: Resource) -> bytes:
    """A model as compact R4 JSON with sorted keys."""
    return orjson.dumps(resource.model_dump(mode="json", exclude_none=True), option=_OPTS)


def dict_bytes(resource: Mapping[str, Any]) -> bytes:
    """An already-validated resource dict as the same compact, key-sorted R4 JSON."""
    return orjson.dumps(resource, option=_OPTS)


def map_record_bytes(
    kind: str, record: Mapping[str, Any], ctx: MappingContext
) -> list[tuple[Resource, bytes]]:
    """Map, validate once, and serialize a record: (model, bytes) per resource."""
    return [(validate(d), dict_bytes(d)) for d in map_record_dicts(kind, record, ctx)]
