"""Pure validation of the clinic record contract (shared/spec/clinic-records.md), every error at once."""

from __future__ import annotations

from collections.abc import Callable

from integration.ingest.problems import RecordError
from integration.ingest.validation import rules, tables
from integration.ingest.validation.engine import Errors, Shape, walk
from integration.ingest.validation.messages import describe
from integration.ingest.validation.references import patient_of, references

__all__ = ["KINDS", "patient_of", "references", "validate_record"]

# Dependency order: a record only refers to kinds before it.
KINDS: tuple[str, ...] = ("practitioner", "patient", "referral", "session", "assessment")

_SPECS: dict[str, tuple[Shape, Callable[[dict, Errors], None]]] = {
    "practitioner": (tables.PRACTITIONER, rules.practitioner),
    "patient": (tables.PATIENT, rules.patient),
    "referral": (tables.REFERRAL, rules.referral),
    "session": (tables.SESSION, rules.session),
    "assessment": (tables.ASSESSMENT, rules.standalone_assessment),
}
_LONGEST_ECHOED_ID = 128


def validate_record(kind: str, record: object) -> list[RecordError]:
    """Every broken rule of one record of `kind` (empty when valid); `record` is anything JSON can produce.

    Raises ValueError only for a `kind` outside KINDS, which is the caller's mistake, not the sender's.
    """
    spec = _SPECS.get(kind)
    if spec is None:
        raise ValueError(f"unknown record kind {kind!r}; expected one of {', '.join(KINDS)}")
    if not isinstance(record, dict):
        message = f"expected a {kind} record (a JSON object), found {describe(record)}"
        return [RecordError(kind, None, "", "type", message)]
    shape, cross_field = spec
    errs: Errors = []
    walk(record, shape, "", errs)
    cross_field(record, errs)
    if not errs:
        return []
    rid = record.get("id")
    if not isinstance(rid, str):
        rid = None
    elif len(rid) > _LONGEST_ECHOED_ID:  # an overlong id is itself an error; do not echo all of it
        rid = rid[:_LONGEST_ECHOED_ID] + "..."
    return [RecordError(kind, rid, path, rule, message) for path, rule, message in errs]
