"""Pure validation of the clinic record contract (shared/spec/clinic-records.md), every error at once."""

from __future__ import annotations

from collections.abc import Callable

from integration.ingest.problems import RecordError
from integration.ingest.validation import rules, tables
from integration.ingest.validation.compiler import compile_shape
from integration.ingest.validation.engine import Errors, Shape, walk
from integration.ingest.validation.messages import describe
from integration.ingest.validation.references import patient_of, references

__all__ = ["KINDS", "patient_of", "references", "validate_record"]

# Dependency order: a record only refers to kinds before it.
KINDS: tuple[str, ...] = ("practitioner", "patient", "referral", "session", "assessment")

# kind -> (field table, its compiled check, cross-field rules, and a quick yes-or-no of those rules for a
# record whose fields passed, given what the check answered).
_Quick = Callable[[dict, tuple], bool]
_Spec = tuple[Shape, Callable[[dict], object], Callable[[dict, Errors], None], _Quick | None]
_SPECS: dict[str, _Spec] = {
    "practitioner": (tables.PRACTITIONER, tables.PRACTITIONER.ok, rules.practitioner, None),
    "patient": (tables.PATIENT, tables.PATIENT.ok, rules.patient, None),
    "referral": (tables.REFERRAL, tables.REFERRAL.ok, rules.referral, None),
    "session": (
        tables.SESSION,
        compile_shape(tables.SESSION, rules.SESSION_INSTANTS),
        rules.session,
        rules.session_ok,
    ),
    "assessment": (tables.ASSESSMENT, tables.ASSESSMENT.ok, rules.standalone_assessment, None),
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
    shape, check, cross_field, quick = spec
    errs: Errors = []
    # The compiled table answers yes or no at once; only a no pays for the walk that finds and reports.
    passed = check(record)
    if passed:
        if quick is not None and quick(record, passed):  # type: ignore[arg-type]
            return []
    else:
        walk(record, shape, "", errs)
    cross_field(record, errs)
    return report(kind, record, errs)


def report(kind: str, record: dict, errs: Errors) -> list[RecordError]:
    """The errors found in `record`, each naming the record by kind and (a short form of) its id."""
    if not errs:
        return []
    rid = record.get("id")
    if not isinstance(rid, str):
        rid = None
    elif len(rid) > _LONGEST_ECHOED_ID:  # an overlong id is itself an error; do not echo all of it
        rid = rid[:_LONGEST_ECHOED_ID] + "..."
    return [RecordError(kind, rid, path, rule, message) for path, rule, message in errs]
