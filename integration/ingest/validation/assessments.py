"""Assessment rules: the answers against the instrument table, and the total against the answers."""

from __future__ import annotations

from integration.ingest.validation.engine import Errors
from integration.ingest.validation.instruments import INSTRUMENTS, Instrument
from integration.ingest.validation.messages import describe, path_key

_MEAN_TOLERANCE = 0.05  # a BPI mean rounded to one decimal is accepted
_EPS = 1e-9  # float noise at the exact tolerance edge


def assessment(record: dict, prefix: str, errs: Errors) -> None:
    """Answers against the instrument (every item, nothing else, each in range) and the total against them."""
    code = record.get("instrument")
    inst = INSTRUMENTS.get(code) if isinstance(code, str) else None
    answers = record.get("answers")
    score = _answers(answers, inst, prefix + "answers.", errs) if isinstance(answers, dict) else None
    if inst is None or "total" not in record:
        return
    total = record["total"]
    kind = type(total)
    if not (kind is int or (kind is float and not total - total)):
        return  # not a finite number: the field check has said so
    if inst.scoring == "sum" and kind is not int:
        message = f"expected an integer {inst.name} total, found {describe(total)}"
        errs.append((prefix + "total", "type", message))
    elif score is None:
        return  # no total to compare against until the answers are complete and valid
    elif inst.scoring == "mean":
        mean = score / inst.items
        if abs(total - mean) > _MEAN_TOLERANCE + _EPS:
            message = f"expected the {inst.name} mean of the answers, {mean:g} (+/-0.05), found {total:g}"
            errs.append((prefix + "total", "total-mismatch", message))
    elif total != score:
        errs.append((prefix + "total", "total-mismatch",
                     f"expected the {inst.name} sum of the answers, {score}, found {describe(total)}"))


def _answers(answers: dict, inst: Instrument | None, where: str, errs: Errors) -> int | None:
    """Report the answers' problems; return their sum when complete and valid, for the total to be checked."""
    if inst is not None and answers.keys() == inst.key_set:  # the usual case: one pass, no paths built
        lo, hi = inst.min, inst.max
        for value in answers.values():
            if type(value) is not int or value < lo or value > hi:
                break
        else:
            return sum(answers.values())
    complete = inst is not None
    for key, value in answers.items():
        if inst is not None and key not in inst.key_set:
            errs.append((where + path_key(key), "answers-unknown",
                         f"expected items q1..q{inst.items} of {inst.name}, found {path_key(key)}"))
        elif type(value) is not int:
            message = f"expected an integer answer, found {describe(value)}"
            errs.append((where + path_key(key), "type", message))
            complete = False
        elif inst is not None and not inst.min <= value <= inst.max:
            errs.append((where + key, "range", f"expected {inst.name} answers between {inst.min} and "
                         f"{inst.max}, found {describe(value)}"))
            complete = False
    if inst is None:
        return None
    for key in inst.keys:
        if key not in answers:
            message = f"expected {inst.name} item {key} (integer {inst.min}..{inst.max}), it is missing"
            errs.append((where + key, "answers-missing", message))
            complete = False
    return sum(answers[key] for key in inst.keys) if complete else None  # an unknown extra key is not scored
