"""What a record points at and whose it is: the ids the store must resolve before it accepts the record."""

from __future__ import annotations

from integration.ingest.problems import Reference

# kind -> (field, referred kind) at the top of the record; medications name practitioners too.
_TOP: dict[str, tuple[tuple[str, str], ...]] = {
    "practitioner": (),
    "patient": (("referring_practitioner_id", "practitioner"),),
    "referral": (("patient_id", "patient"), ("practitioner_id", "practitioner")),
    "session": (("patient_id", "patient"), ("attending_id", "practitioner"), ("nurse_id", "practitioner")),
    "assessment": (("patient_id", "patient"),),
}
_MEDICATION = (("performer_id", "practitioner"), ("witness_id", "practitioner"))


def _known(kind: str) -> None:
    if kind not in _TOP:
        raise ValueError(f"unknown record kind {kind!r}; expected one of {', '.join(_TOP)}")


def references(kind: str, record: dict) -> list[Reference]:
    """The ids this (already valid) record requires to exist, with the path of each reference."""
    _known(kind)
    if not isinstance(record, dict):
        return []
    refs = [
        Reference(name, target, value)
        for name, target in _TOP[kind]
        if isinstance(value := record.get(name), str)
    ]
    if kind == "session" and isinstance(meds := record.get("medications"), list):
        for i, med in enumerate(meds):
            if isinstance(med, dict):
                refs.extend(
                    Reference(f"medications[{i}].{name}", target, value)
                    for name, target in _MEDICATION
                    if isinstance(value := med.get(name), str)
                )
    return refs


def patient_of(kind: str, record: dict) -> str | None:
    """The clinic patient id the record belongs to; None for practitioners (and for a record without one)."""
    _known(kind)
    if kind == "practitioner" or not isinstance(record, dict):
        return None
    value = record.get("id" if kind == "patient" else "patient_id")
    return value if isinstance(value, str) else None
