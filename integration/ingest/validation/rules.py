"""Cross-field rules of the contract, one small function each; they skip fields that are themselves broken."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from operator import itemgetter

from integration.ingest.validation import formats, tables
from integration.ingest.validation.assessments import assessment, score, total_rule
from integration.ingest.validation.engine import Errors, valid
from integration.ingest.validation.formats import instant, parse_instant
from integration.ingest.validation.instruments import INSTRUMENTS
from integration.ingest.validation.messages import describe

_HOUR = 3600 * 1_000_000  # instants are in microseconds
_WINDOW_SLACK = 2 * _HOUR  # spec, Vital signs set: "inside the session window, 2 h slack each side"
_DOSE_TOLERANCE = 0.05  # spec, Medication administration: "must agree within 5%"
_EPS = 1e-9  # float noise at the exact tolerance edge
_NEVER, _LOWEST = float("inf"), float("-inf")  # what an absent bound or measure compares as
_ID = itemgetter("id")

# unit -> (mg per unit, times weight_kg, times infusion hours); mL and mL/h cannot be converted.
_TO_MG: dict[str, tuple[float, bool, bool]] = {
    "mg": (1.0, False, False),
    "mcg": (0.001, False, False),
    "g": (1000.0, False, False),
    "mg/kg": (1.0, True, False),
    "mcg/kg": (0.001, True, False),
    "mg/h": (1.0, False, True),
    "mg/kg/h": (1.0, True, True),
    "mcg/kg/h": (0.001, True, True),
}
_F = tables.SESSION.fields
_MED = tables.MEDICATION.fields
_VIT = tables.VITALS.fields
_REAL = (int, float)  # bool is neither, by type()
_SYS_LO, _SYS_HI = _VIT["systolic"].lo, _VIT["systolic"].hi
_DIA_LO, _DIA_HI = _VIT["diastolic"].lo, _VIT["diastolic"].hi
if tables.VITALS.key_set != tables.MEASURES | {"taken_at"}:  # session_ok counts on it
    raise RuntimeError("a vital signs set must have taken_at and the measures as its only fields")
_DOSE = _MED["dose"].shape.fields  # type: ignore[union-attr]
_RATE = _MED["rate"].shape.fields  # type: ignore[union-attr]


# --- shared -------------------------------------------------------------------------------------------------
def duplicate_ids(record: dict, name: str, errs: Errors) -> None:
    """`duplicate-id`: two children of one list with the same id."""
    items = record.get(name)
    if not isinstance(items, list):
        return
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        if isinstance(item, dict):
            cid = item.get("id")
            if isinstance(cid, str):
                first = seen.setdefault(cid, i)
                if first != i:
                    message = f"expected unique ids in {name}, found {describe(cid)} also at {name}[{first}]"
                    errs.append((f"{name}[{i}].id", "duplicate-id", message))


def coded(record: dict, name: str, errs: Errors) -> None:
    """`code-format` of an indication or referral reason, by its system."""
    coding = record.get(name)
    if not isinstance(coding, dict):
        return
    code = coding.get("code")
    if not isinstance(code, str) or not code or code.isspace():
        return
    system = coding.get("system")
    if system not in ("icd10cm", "snomed"):
        return
    problem = code_problem(system, code)
    if problem is not None:
        errs.append((f"{name}.code", "code-format", f"{problem}, found {describe(code)}"))


def code_problem(system: str, code: str) -> str | None:
    """What is wrong with `code` as a code of `system` (icd10cm or snomed), if anything."""
    return _code_problem(system, code) if len(code) <= _MEMO_CODE else _CODE_FORMATS[system](code)


_CODE_FORMATS = {"icd10cm": formats.icd10cm_problem, "snomed": formats.snomed_problem}
_MEMO_CODE = 32  # longer codes are never remembered (nor valid)


@lru_cache(maxsize=1024)
def _code_problem(system: str, code: str) -> str | None:
    """What is wrong with a code of `system`; remembered, as a clinic's few indication codes recur."""
    return _CODE_FORMATS[system](code)


# --- patient ------------------------------------------------------------------------------------------------
def patient(record: dict, errs: Errors) -> None:
    """Birth date plausibility, allergy coding, and no_known_allergies against the allergy list."""
    born = record.get("birth_date")
    day = formats.parse_date(born) if isinstance(born, str) else None
    if day is not None:
        # A day of slack: a birth "today" at UTC+14 is tomorrow nowhere yet in UTC terms.
        latest = (datetime.now(UTC) + timedelta(days=1)).date()
        if day < (1900, 1, 1) or day > (latest.year, latest.month, latest.day):
            errs.append(
                (
                    "birth_date",
                    "plausible-date",
                    f"expected a birth date between 1900-01-01 and today, found {describe(born)}",
                )
            )
    allergies = record.get("allergies")
    if record.get("no_known_allergies") is True and isinstance(allergies, list) and allergies:
        errs.append(
            (
                "no_known_allergies",
                "no-known-allergies-conflict",
                f"expected no_known_allergies false or absent beside {len(allergies)} listed allergies, "
                "found true",
            )
        )
    if isinstance(allergies, list):
        for i, allergy in enumerate(allergies):
            substance = allergy.get("substance") if isinstance(allergy, dict) else None
            if isinstance(substance, dict):
                _substance(substance, f"allergies[{i}].substance", errs)
    duplicate_ids(record, "allergies", errs)


def _substance(substance: dict, path: str, errs: Errors) -> None:
    has_system, has_code = "system" in substance, "code" in substance
    if has_system != has_code:
        errs.append(
            (
                path,
                "coding-pair",
                "expected system and code together or neither, found only "
                + ("system" if has_system else "code"),
            )
        )
        return
    code, system = substance.get("code"), substance.get("system")
    if not isinstance(code, str):
        return
    if system == "snomed":
        problem = formats.snomed_problem(code)
    elif system == "rxnorm":
        problem = formats.rxnorm_problem(code)
    else:
        return
    if problem is not None:
        errs.append((path + ".code", "code-format", f"{problem}, found {describe(code)}"))


# --- referral -----------------------------------------------------------------------------------------------
def referral(record: dict, errs: Errors) -> None:
    """The reason's code must fit its system."""
    coded(record, "reason", errs)


def practitioner(record: dict, errs: Errors) -> None:
    """No cross-field rules: the NPI checks are field formats."""


# --- assessment (the answer rules are in assessments.py) ----------------------------------------------------
def standalone_assessment(record: dict, errs: Errors) -> None:
    """An assessment sent on its own."""
    assessment(record, "", errs)


# --- session ------------------------------------------------------------------------------------------------
def session(record: dict, errs: Errors) -> None:
    """Status against end and stop_reason, the series, and the rules of every nested child."""
    status = record.get("status")
    start, end = instant(record.get("start")), instant(record.get("end"))
    if start is not None and end is not None and end <= start:
        errs.append(("end", "end-after-start", "expected the session end to be after its start"))
    if status in ("completed", "stopped") and "end" not in record:
        errs.append(("end", "end-required", f"a {status} session needs its end time; it is missing"))
    if status == "stopped":
        reason = record.get("stop_reason")
        if reason is None or (isinstance(reason, str) and (not reason or reason.isspace())):
            errs.append(
                (
                    "stop_reason",
                    "stop-reason-required",
                    f"a stopped session needs a stop_reason, found {describe(reason)}",
                )
            )
    coded(record, "indication", errs)
    _series(record.get("series"), errs)
    weight = record.get("weight_kg")
    kg = float(weight) if valid(_F["weight_kg"], weight) else None  # type: ignore[arg-type]
    meds = record.get("medications")
    if isinstance(meds, list):
        for i, med in enumerate(meds):
            if isinstance(med, dict):
                _medication(med, i, kg, errs)
    lo = start - _WINDOW_SLACK if start is not None else None
    hi = end + _WINDOW_SLACK if end is not None else None
    _vitals(record.get("vitals"), lo, hi, errs)
    children = record.get("assessments")
    if isinstance(children, list):
        owner = record.get("patient_id")
        for i, child in enumerate(children):
            if not isinstance(child, dict):
                continue
            assessment(child, f"assessments[{i}].", errs)
            pid = child.get("patient_id")
            if isinstance(pid, str) and isinstance(owner, str) and pid != owner:
                errs.append(
                    (
                        f"assessments[{i}].patient_id",
                        "patient-mismatch",
                        f"expected the session's patient {describe(owner)}, found {describe(pid)}",
                    )
                )
    for name in ("medications", "assessments", "adverse_events"):
        duplicate_ids(record, name, errs)


def _series(series: object, errs: Errors) -> None:
    if not isinstance(series, dict):
        return
    planned = series.get("planned_sessions")
    for name in ("number", "session_number", "planned_sessions"):
        n = series.get(name)
        if type(n) is int and n < 1:
            errs.append((f"series.{name}", "series", f"expected {name} of at least 1, found {describe(n)}"))
    n = series.get("session_number")
    if type(n) is int and type(planned) is int and planned >= 1 and n > planned:
        message = f"expected session_number <= planned_sessions ({describe(planned)}), found {describe(n)}"
        errs.append(("series.session_number", "series", message))


def _vitals(items: object, lo: int | None, hi: int | None, errs: Errors) -> None:
    if not isinstance(items, list):
        return
    measures = tables.MEASURES
    for i, vital in enumerate(items):  # one loop, no call per set: sessions carry many sets
        if not isinstance(vital, dict):
            continue
        if measures.isdisjoint(vital):
            errs.append((f"vitals[{i}]", "required", "expected at least one measure, found only taken_at"))
        diastolic = vital.get("diastolic")
        if diastolic is not None:
            systolic = vital.get("systolic")
            if (
                systolic is not None
                and type(systolic) in _REAL
                and type(diastolic) in _REAL
                and _SYS_LO <= systolic <= _SYS_HI  # type: ignore[operator]
                and _DIA_LO <= diastolic <= _DIA_HI
                and diastolic >= systolic
            ):  # type: ignore[operator]
                errs.append(
                    (
                        f"vitals[{i}].diastolic",
                        "diastolic-below-systolic",
                        f"expected diastolic below systolic ({systolic}), found {diastolic}",
                    )
                )
        if lo is not None:
            taken = vital.get("taken_at")
            if type(taken) is str:
                at = parse_instant(taken)
                if type(at) is int and (at < lo or (hi is not None and at > hi)):
                    errs.append(
                        (
                            f"vitals[{i}].taken_at",
                            "window",
                            "expected taken_at within the session (start - 2 h to end + 2 h), found "
                            + ("before" if at < lo else "after")
                            + " it",
                        )
                    )


def _medication(med: dict, i: int, kg: float | None, errs: Errors) -> None:
    has_dose, has_rate = "dose" in med, "rate" in med
    if has_dose == has_rate:
        errs.append(
            (
                f"medications[{i}]",
                "dose-or-rate",
                "expected exactly one of dose and rate, found " + ("both" if has_dose else "neither"),
            )
        )
    start, end = instant(med.get("start")), instant(med.get("end"))
    if start is not None and end is not None and end <= start:
        errs.append(
            (f"medications[{i}].end", "end-after-start", "expected the medication end to be after its start")
        )
    if has_rate and "end" not in med:
        errs.append(
            (f"medications[{i}].end", "end-required", "a rate means an infusion, which needs its end")
        )
    if "wasted" in med and "witness_id" not in med:
        errs.append(
            (f"medications[{i}].witness_id", "witness-required", "a wasted amount needs a witness_id")
        )
    if "total_mg" in med and has_dose != has_rate:
        _dose_total(med, i, kg, start, end, errs)


def _dose_total(
    med: dict, i: int, kg: float | None, start: int | None, end: int | None, errs: Errors
) -> None:
    total = med["total_mg"]
    quantity, fields = (med["dose"], _DOSE) if "dose" in med else (med["rate"], _RATE)
    if not valid(_MED["total_mg"], total) or not isinstance(quantity, dict):
        return
    value, unit = quantity.get("value"), quantity.get("unit")
    if not valid(fields["value"], value) or not valid(fields["unit"], unit):
        return
    computed = _milligrams(value, unit, kg, start, end)  # type: ignore[arg-type]
    if computed is not None and abs(total - computed) > _DOSE_TOLERANCE * computed * (1 + _EPS):
        how = f"{value:g} {unit}"  # how the total was computed, said only when it disagrees
        if _TO_MG[unit][1]:  # type: ignore[index]
            how += f" x {kg:g} kg"
        if _TO_MG[unit][2]:  # type: ignore[index]
            how += f" x {(end - start) / _HOUR:.4g} h"  # type: ignore[operator]
        errs.append(
            (
                f"medications[{i}].total_mg",
                "dose-total",
                f"expected total_mg within 5% of {computed:.4g} mg ({how}), found {total:g}",
            )
        )


def _milligrams(
    value: float, unit: str, kg: float | None, start: int | None, end: int | None
) -> float | None:
    """The milligrams a valid dose or rate comes to, or None when they cannot be computed (mL, no weight)."""
    factor, per_kg, per_hour = _TO_MG.get(unit, (0.0, False, False))
    if not factor or (per_kg and kg is None):
        return None  # mL and mL/h carry no concentration; a broken weight has its own error
    computed = float(value) * factor
    if per_kg:
        computed *= kg  # type: ignore[operator]
    if per_hour:
        if start is None or end is None or end <= start:
            return None
        computed *= (end - start) / _HOUR
    return computed


# --- session, the quick way ---------------------------------------------------------------------------------
# The datetimes whose instants `session_ok` reads, handed over by the compiled field check that parsed them.
SESSION_INSTANTS = ("start", "end", "medications.start", "medications.end", "vitals.taken_at")


def session_ok(record: dict, instants: tuple) -> bool:
    """Whether `session` would report nothing, for a record whose fields have all passed their table.

    `validate_record` asks this first and runs `session` only on a no. The same rules without paths or
    messages: the fields are known good, so there are no type guards, and `instants` are those of
    SESSION_INSTANTS, from the field check's own parse. A rule added to `session` belongs here too;
    test_equivalence.py holds the two to the same answers.
    """
    start, end, med_starts, med_ends, taken = instants
    status = record["status"]
    if end is None:
        if status == "completed" or status == "stopped":
            return False
    elif end <= start:
        return False
    if status == "stopped":
        reason = record.get("stop_reason")
        if not reason or reason.isspace():
            return False
    series = record.get("series")
    if series is not None:  # numbers of at least 1, and session_number <= planned_sessions when given
        planned = series.get("planned_sessions", _NEVER)
        if not (series["number"] >= 1 and 1 <= series["session_number"] <= planned and planned >= 1):
            return False
    indication = record["indication"]
    if code_problem(indication["system"], indication["code"]) is not None:
        return False
    meds = record.get("medications")
    if meds:
        kg = float(record["weight_kg"])
        for med, med_start, med_end in zip(meds, med_starts, med_ends, strict=True):
            if not _medication_ok(med, kg, med_start, med_end):
                return False
        if len(set(map(_ID, meds))) != len(meds):
            return False
    vitals = record.get("vitals")
    if vitals:
        if min(taken) < start - _WINDOW_SLACK or (end is not None and max(taken) > end + _WINDOW_SLACK):
            return False
        if 1 in map(len, vitals):  # taken_at alone: in a set whose fields passed, any other is a measure
            return False
        for vital in vitals:
            if vital.get("diastolic", _LOWEST) >= vital.get("systolic", _NEVER):
                return False
    children = record.get("assessments")
    if children:
        owner = record["patient_id"]
        for child in children:
            inst = INSTRUMENTS[child["instrument"]]
            found = score(child["answers"], inst)
            if found is None or ("total" in child and total_rule(child["total"], found, inst) is not None):
                return False
            if child.get("patient_id", owner) != owner:
                return False
        if len(set(map(_ID, children))) != len(children):
            return False
    events = record.get("adverse_events")
    return not events or len(set(map(_ID, events))) == len(events)


def _medication_ok(med: dict, kg: float, start: int, end: int | None) -> bool:
    has_dose = "dose" in med
    if has_dose == ("rate" in med):
        return False
    if end is None:
        if not has_dose:
            return False  # a rate means an infusion, which needs its end
    elif end <= start:
        return False
    if "wasted" in med and "witness_id" not in med:
        return False
    total = med.get("total_mg")
    if total is not None:
        quantity = med["dose"] if has_dose else med["rate"]
        computed = _milligrams(quantity["value"], quantity["unit"], kg, start, end)
        if computed is not None and abs(total - computed) > _DOSE_TOLERANCE * computed * (1 + _EPS):
            return False
    return True
