"""Why a record could not be mapped: one exception tree, so callers can tell bad data from a bug."""

from __future__ import annotations

# MappingError
#  +-- UnknownCodeError     a clinic value the terminology files do not know (never silently defaulted)
#  +-- UnknownReferenceError a practitioner id the mapping context does not know
#  +-- DuplicateIdError     two resources of one mapping got the same deterministic id


class MappingError(ValueError):
    """A valid clinic record that the mapping layer still cannot turn into FHIR."""


class UnknownCodeError(MappingError):
    """A clinic code (drug, route, unit, measure, instrument, kind, status) the terminology files lack."""

    def __init__(self, table: str, value: object) -> None:
        super().__init__(f"unknown {table}: {value!r} is not in mappings/terminology")
        self.table = table
        self.value = value


class UnknownReferenceError(MappingError):
    """A record names a practitioner the mapping context does not know."""


class DuplicateIdError(MappingError):
    """Two resources of one mapping got the same id (e.g. two vital-sign sets at the same instant)."""
