"""The shortcuts (compiled tables, quick rules, datetime memos) never change an answer, nor its order."""

from __future__ import annotations

import hashlib
import json
import random
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from integration.ingest.problems import RecordError
from integration.ingest.synthetic import batch
from integration.ingest.validation import _SPECS, KINDS, report, rules, validate_record
from integration.ingest.validation.engine import Errors, Field, Shape, walk
from tests.ingest.validation.mutations import KIND_SHAPES, mutate
from tests.ingest.validation.records import BASES

# Three holds on them:
# - a property test: validate_record against the plain path (the engine's walk with every compiled test
#   switched off, then every cross-field rule) on valid records mutated at random;
# - the compiled tests themselves: a yes from a shape's or a field's compiled test is a walk with nothing to
#   report, and the quick session rules agree with the full ones whenever the fields pass;
# - a recorded corpus: 2,000 deterministic mutations whose answers were recorded from the validator as it
#   was before any shortcut (commit d9e4d43), so that the plain path cannot drift either.

CORPUS = Path(__file__).with_name("equivalence_corpus.json")


# --- the plain path -----------------------------------------------------------------------------------------
def _rows(shape: Shape) -> Iterator[Shape | Field]:
    yield shape
    for f in shape.fields.values():
        yield f
        for nested in (f.shape, f.item.shape if f.item else None):
            if nested is not None:
                yield from _rows(nested)
        if f.item is not None:
            yield f.item


ROWS = {id(row): row for shape in KIND_SHAPES.values() for row in _rows(shape)}


def _never(value: object) -> bool:
    return False


@contextmanager
def shortcuts_off() -> Iterator[None]:
    """Every compiled test answers no, so the engine walks and checks everything the long way."""
    saved = {key: row.ok for key, row in ROWS.items()}
    try:
        for row in ROWS.values():
            row.ok = _never
        yield
    finally:
        for key, row in ROWS.items():
            row.ok = saved[key]


def plain(kind: str, record: object) -> list[RecordError]:
    """What validate_record answers without any shortcut: the walk, then every cross-field rule."""
    if not isinstance(record, dict):
        return validate_record(kind, record)  # one error, no walk
    shape, _, cross_field, _ = _SPECS[kind]
    errs: Errors = []
    with shortcuts_off():
        walk(record, shape, "", errs)
        cross_field(record, errs)
    return report(kind, record, errs)


# --- valid records to mutate --------------------------------------------------------------------------------
def _pools() -> dict[str, list[dict]]:
    data = batch(99, 6, 4)
    keys = {
        "practitioner": "practitioners",
        "patient": "patients",
        "referral": "referrals",
        "session": "sessions",
        "assessment": "assessments",
    }
    return {kind: [BASES[kind](), *data[key][:8]] for kind, key in keys.items()}


POOLS = _pools()


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, dict]:
    kind = draw(st.sampled_from([*KINDS, "session", "session"]))  # sessions have most rules: thrice the odds
    base = draw(st.sampled_from(POOLS[kind]))
    rng = draw(st.randoms(use_true_random=False))
    return kind, mutate(kind, base, rng, draw(st.sampled_from([1, 1, 1, 2, 3, 6])))


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_answers_are_those_of_the_plain_path(case: tuple[str, dict]) -> None:
    kind, record = case
    assert validate_record(kind, record) == plain(kind, record)


# --- the compiled tests -------------------------------------------------------------------------------------
def _objects(value: Any, shape: Shape) -> Iterator[tuple[dict, Shape]]:
    """Every object in `value` that the table gives a shape, with that shape."""
    if not isinstance(value, dict):
        return
    yield value, shape
    for key, child in value.items():
        f = shape.fields.get(key)
        if f is None:
            continue
        if f.shape is not None:
            yield from _objects(child, f.shape)
        elif f.item is not None and f.item.shape is not None and isinstance(child, list):
            for each in child:
                yield from _objects(each, f.item.shape)


def _fields(value: Any, shape: Shape) -> Iterator[tuple[object, Field]]:
    for obj, sub in _objects(value, shape):
        for key, child in obj.items():
            if key in sub.fields:
                yield child, sub.fields[key]


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_a_compiled_yes_is_a_walk_with_nothing_to_report(case: tuple[str, dict]) -> None:
    kind, record = case
    for obj, shape in _objects(record, KIND_SHAPES[kind]):
        if shape.ok(obj):
            with shortcuts_off():  # the walk must not lean on what it is checking
                errs: Errors = []
                walk(obj, shape, "", errs)
            assert errs == [], (shape.what, obj)
    for value, f in _fields(record, KIND_SHAPES[kind]):
        if f.ok(value):
            with shortcuts_off():
                assert f.check(f, value, "", None), (f.name, value)


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_quick_session_rules_agree_with_the_full_ones(case: tuple[str, dict]) -> None:
    _, record = case
    _, check, _, quick = _SPECS["session"]
    passed = check(record)
    if passed:
        errs: Errors = []
        rules.session(record, errs)
        assert quick(record, passed) == (errs == []), errs  # type: ignore[misc]


def test_valid_records_take_the_quick_path() -> None:
    """Not correctness but the point of it all: realistic valid records never fall back to the walk."""
    records = batch(2026, 30, 6)
    for key, kind in (
        ("practitioners", "practitioner"),
        ("patients", "patient"),
        ("referrals", "referral"),
        ("sessions", "session"),
        ("assessments", "assessment"),
    ):
        _, check, _, quick = _SPECS[kind]
        for record in records[key]:
            passed = check(record)
            assert passed, (kind, record["id"])
            assert quick is None or quick(record, passed), (kind, record["id"])


def test_captured_instants_are_those_of_the_fields() -> None:
    from integration.ingest.validation.formats import parse_instant

    _, check, _, _ = _SPECS["session"]
    for record in batch(5, 4, 4)["sessions"]:
        start, end, med_starts, med_ends, taken = check(record)
        assert start == parse_instant(record["start"])
        assert end == (parse_instant(record["end"]) if "end" in record else None)
        meds = record.get("medications", [])
        assert med_starts == [parse_instant(m["start"]) for m in meds]
        assert med_ends == [parse_instant(m["end"]) if "end" in m else None for m in meds]
        assert taken == [parse_instant(v["taken_at"]) for v in record.get("vitals", [])]


def test_a_mean_total_beyond_doubles_is_its_range_error_not_a_crash() -> None:
    """The one answer that differs from before the shortcuts: this used to raise OverflowError."""
    record = BASES["assessment"]()
    record.update(instrument="bpi_severity", answers={"q1": 1, "q2": 2, "q3": 3, "q4": 4}, total=10**400)
    assert [(e.path, e.rule) for e in validate_record("assessment", record)] == [("total", "range")]
    record["instrument"] = "phq9"  # a sum: compared as integers, as it always was
    record["answers"] = {f"q{i}": 1 for i in range(1, 10)}
    assert [(e.path, e.rule) for e in validate_record("assessment", record)] == [
        ("total", "range"),
        ("total", "total-mismatch"),
    ]


def test_printable_whitespace_is_only_the_space() -> None:
    """The compiled id test leans on isprintable() and strip(); this is what makes that exact for ids."""
    assert [c for c in map(chr, range(0x110000)) if c.isspace() and c.isprintable()] == [" "]
    control = [chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)]]
    assert not any(c.isprintable() for c in control)


# --- the recorded corpus ------------------------------------------------------------------------------------
def corpus_cases(bases: dict[str, list[dict]], count: int) -> Iterator[tuple[str, dict]]:
    """The corpus: `count` mutations of the stored bases, the same on every run and Python version."""
    kinds = [*sorted(bases), "session", "session"]
    for i in range(count):
        rng = random.Random(i)
        kind = rng.choice(kinds)
        yield kind, mutate(kind, rng.choice(bases[kind]), rng, rng.choice([1, 1, 1, 2, 3, 6]))


def digest(errors: list[RecordError]) -> str:
    text = json.dumps([e.as_dict() for e in errors], ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def test_answers_are_those_recorded_before_the_shortcuts() -> None:
    corpus = json.loads(CORPUS.read_text(encoding="utf-8"))
    cases = corpus_cases(corpus["bases"], len(corpus["digests"]))
    for i, ((kind, record), expected) in enumerate(zip(cases, corpus["digests"], strict=True)):
        assert digest(validate_record(kind, record)) == expected, (i, kind, validate_record(kind, record))


def record_corpus(validate: Any = validate_record, count: int = 2000) -> None:
    """Write the corpus with the answers of `validate`: run it only with a validator you trust."""
    bases = json.loads(json.dumps({kind: pool[:3] for kind, pool in POOLS.items()}))  # as read back
    digests = [digest(validate(kind, record)) for kind, record in corpus_cases(bases, count)]
    CORPUS.write_text(
        json.dumps({"bases": bases, "digests": digests}, separators=(",", ":")) + "\n", encoding="utf-8"
    )


if __name__ == "__main__":  # python -m tests.ingest.validation.test_equivalence --record
    if sys.argv[1:] != ["--record"]:
        raise SystemExit("usage: python -m tests.ingest.validation.test_equivalence --record")
    record_corpus()
    pytest.main([__file__, "-q", "-k", "recorded"])
