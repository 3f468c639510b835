"""Validation cost per realistic session beside two floors timed in the same run, so VM speed cancels out."""

from __future__ import annotations

import statistics

import orjson

from bench.harness import timed
from integration.ingest import synthetic
from integration.ingest.validation import validate_record

N_PATIENTS = 200
SESSIONS_PER_PATIENT = 10
ROUNDS = 7  # each figure is the median of this many timings of the whole workload


def _sessions() -> list[dict]:
    data = synthetic.batch(seed=2026, n_patients=N_PATIENTS, sessions_per_patient=SESSIONS_PER_PATIENT)
    return data["sessions"]


def touch(value: object) -> int:
    """Floor: visit every value of a JSON document once, one isinstance test per value, and count them."""
    if isinstance(value, dict):
        n = 1
        for child in value.values():
            n += touch(child)
        return n
    if isinstance(value, list):
        n = 1
        for child in value:
            n += touch(child)
        return n
    return 1


def measure(sessions: list[dict], rounds: int = ROUNDS) -> dict[str, float]:
    """Median microseconds per session of validation and of the two floors, interleaved round by round."""
    loads, dumps = orjson.loads, orjson.dumps

    def validate() -> None:
        for s in sessions:
            if validate_record("session", s):
                raise AssertionError(f"synthetic session {s['id']} is invalid")

    def roundtrip() -> None:
        for s in sessions:
            loads(dumps(s))

    def walk() -> None:
        for s in sessions:
            touch(s)

    cases = {"validate_record": validate, "orjson loads(dumps)": roundtrip, "bare walk (isinstance)": walk}
    for fn in cases.values():  # warm caches and the code paths once before timing
        fn()
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, fn in cases.items():
            samples[name].append(timed(fn))
    return {name: statistics.median(times) / len(sessions) * 1e6 for name, times in samples.items()}


def main() -> None:
    sessions = _sessions()
    values = sum(touch(s) for s in sessions) / len(sessions)
    size = sum(len(orjson.dumps(s)) for s in sessions) / len(sessions)
    print(
        f"validation: {len(sessions):,} synthetic sessions, {values:.0f} JSON values and "
        f"{size / 1024:.1f} KiB each, median of {ROUNDS} rounds"
    )
    figures = measure(sessions)
    own = figures["validate_record"]
    for name, us in figures.items():
        ratio = "" if name == "validate_record" else f"validate_record is {own / us:.2f}x this"
        print(f"  {name:<32} {us:>8.1f} us/session   {ratio}")


if __name__ == "__main__":
    main()
