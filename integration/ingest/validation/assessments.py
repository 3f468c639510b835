"""Assessment rules: the answers against the instrument table, and the total against the answers."""

from __future__ import annotations

from integration.ingest.validation.engine import Errors
from integration.ingest.validation.instruments import INSTRUMENTS, Instrument
from integration.ingest.validation.messages import describe, path_key

_MEAN_TOLERANCE = 0.05  # a BPI mean rounded to one decimal is accepted
_EPS = 1e-9  # float noise at the exact tolerance edge
_FLOAT_MAX = 1.7976931348623157e308


def assessment(record: dict, prefix: str, errs: Errors) -> None:
    """Answers against the instrument (every item, nothing else, each in range) and the total against them."""
    code = record.get("instrument")
    inst = INSTRUMENTS.get(code) if isinstance(code, str) else None
    answers = record.get("answers")
    found = _answers(answers, inst, prefix, errs) if isinstance(answers, dict) else None
    if inst is None or "total" not in record:
        return
    total = record["total"]
    kind = type(total)
    if not (kind is int or (kind is float and not total - total)):
        return  # not a finite number: the field check has said so
    rule = total_rule(total, found, inst)
    if rule == "type":
        message = f"expected an integer {inst.name} total, found {describe(total)}"
        errs.append((prefix + "total", "type", message))
    elif rule is None:
        return
    elif inst.scoring == "mean":
        mean = found / inst.items  # type: ignore[operator]
        message = f"expected the {inst.name} mean of the answers, {mean:g} (+/-0.05), found {total:g}"
        errs.append((prefix + "total", "total-mismatch", message))
    else:
        errs.append(
            (
                prefix + "total",
                "total-mismatch",
                f"expected the {inst.name} sum of the answers, {found}, found {describe(total)}",
            )
        )


def score(answers: dict, inst: Instrument) -> int | None:
    """The sum of answers that are complete and valid: every item, nothing else, each an integer in range."""
    if answers.keys() != inst.key_set:
        return None
    lo, hi = inst.min, inst.max
    for value in answers.values():
        if type(value) is not int or value < lo or value > hi:
            return None
    return sum(answers.values())


def total_rule(total: float, found: int | None, inst: Instrument) -> str | None:
    """The rule a finite total breaks (`type`, `total-mismatch`) against the answers' score, if any.

    There is nothing to compare against until the answers are complete and valid (`found` None).
    """
    if inst.scoring == "sum" and type(total) is not int:
        return "type"
    if found is None:
        return None
    if inst.scoring == "mean":
        if abs(total) > _FLOAT_MAX:  # an integer no mean reaches, nor a float holds: its range error says so
            return None
        return "total-mismatch" if abs(total - found / inst.items) > _MEAN_TOLERANCE + _EPS else None
    return "total-mismatch" if total != found else None


def _answers(answers: dict, inst: Instrument | None, prefix: str, errs: Errors) -> int | None:
    """Report the answers' problems; return their sum when complete and valid, for the total to be checked."""
    if inst is not None:  # the usual case: one pass, no paths built
        found = score(answers, inst)
        if found is not None:
            return found
    where = prefix + "answers."
    complete = inst is not None
    for key, value in answers.items():
        if inst is not None and key not in inst.key_set:
            errs.append(
                (
                    where + path_key(key),
                    "answers-unknown",
                    f"expected items q1..q{inst.items} of {inst.name}, found {path_key(key)}",
                )
            )
        elif type(value) is not int:
            message = f"expected an integer answer, found {describe(value)}"
            errs.append((where + path_key(key), "type", message))
            complete = False
        elif inst is not None and not inst.min <= value <= inst.max:
            errs.append(
                (
                    where + key,
                    "range",
                    f"expected {inst.name} answers between {inst.min} and "
                    f"{inst.max}, found {describe(value)}",
                )
            )
            complete = False
    if inst is None:
        return None
    for key in inst.keys:
        if key not in answers:
            message = f"expected {inst.name} item {key} (integer {inst.min}..{inst.max}), it is missing"
            errs.append((where + key, "answers-missing", message))
            complete = False
    return sum(answers[key] for key in inst.keys) if complete else None  # an unknown extra key is not scored
