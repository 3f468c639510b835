"""Pure mapping from clinic records to FHIR R4 resources: no I/O, no Flask, no database (see dispatch.py)."""

from __future__ import annotations

from mappings.context import ClinicOrganization, KnownPractitioner, MappingContext
from mappings.dispatch import KINDS, map_record, map_record_dicts, static_resources
from mappings.errors import MappingError, UnknownCodeError
from mappings.serialize import map_record_bytes, to_json_bytes

__all__ = [
    "KINDS",
    "ClinicOrganization",
    "KnownPractitioner",
    "MappingContext",
    "MappingError",
    "UnknownCodeError",
    "map_record",
    "map_record_bytes",
    "map_record_dicts",
    "static_resources",
    "to_json_bytes",
]
