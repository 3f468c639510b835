"""Mapping throughput beside its floors: models-alone validation and orjson, so regressions show as ratios.

Realistic synthetic sessions are mapped; each figure is resources per second on one core, the best of
5 rounds that each run every figure once (interleaved, so a busy neighbour hurts all figures alike),
with the cyclic GC collected, frozen and disabled around every timed run.
Target (issue 3): mapping + validation >= half the models-alone rate.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from fhir.resources.R4B.observation import Observation

from bench.harness import timed
from integration.ingest import synthetic
from integration.ingest.resources import mapping_context
from integration.settings import Settings
from mappings.dispatch import map_record, map_record_dicts
from mappings.models import validate
from mappings.serialize import dict_bytes, map_record_bytes, to_json_bytes


def sessions(n: int) -> list[dict]:
    """`n` realistic sessions from the synthetic generator (the same workload as the intake benchmark)."""
    per_patient = 10
    return synthetic.batch(seed=2026, n_patients=-(-n // per_patient), sessions_per_patient=per_patient)[
        "sessions"
    ][:n]


def main(n: int = 300, rounds: int = 5) -> dict[str, float]:
    """Print and return resources/s per figure (best of interleaved rounds: the box is shared)."""
    ctx = mapping_context(Settings.load(environ={}))
    records = sessions(n)
    dicts = [d for s in records for d in map_record_dicts("session", s, ctx)]
    models = [validate(d) for d in dicts]
    count = len(dicts)
    observations = [d for d in dicts if d["resourceType"] == "Observation"]
    print(f"{n} sessions -> {count} resources ({len(observations)} Observations), best of {rounds} rounds")
    cases: dict[str, tuple[str, Callable[[], object], int]] = {
        "map_only": (
            "mapping only (dicts, no validation)",
            lambda: [map_record_dicts("session", s, ctx) for s in records],
            count,
        ),
        "map_validate": (
            "mapping + validation (map_record)",
            lambda: [map_record("session", s, ctx) for s in records],
            count,
        ),
        "map_validate_bytes": (
            "mapping + validation + bytes (map_record_bytes)",
            lambda: [map_record_bytes("session", s, ctx) for s in records],
            count,
        ),
        "models_alone": (
            "floor: models alone, validating the same dicts",
            lambda: [validate(d) for d in dicts],
            count,
        ),
        "orjson": ("floor: orjson dumps of the same dicts", lambda: [dict_bytes(d) for d in dicts], count),
        "model_dump": (
            "for comparison: model_dump + orjson (to_json_bytes)",
            lambda: [to_json_bytes(m) for m in models],
            count,
        ),
        "observations_alone": (
            "Observation.model_validate alone (Observations only)",
            lambda: [Observation.model_validate(d) for d in observations],
            len(observations),
        ),
    }
    best = dict.fromkeys(cases, float("inf"))
    for _ in range(rounds):
        for key, (_, fn, _) in cases.items():
            best[key] = min(best[key], timed(fn))
    figures = {key: cases[key][2] / best[key] for key in cases}
    for key, (label, _, _) in cases.items():
        print(f"  {label:<56} {figures[key]:>10,.0f} /s")
    ratio = figures["map_validate"] / figures["models_alone"]
    print(f"  mapping + validation / models alone = {ratio:.2f} (target >= 0.50)")
    with_bytes = figures["map_validate_bytes"] / figures["models_alone"]
    print(f"  mapping + validation + bytes / models alone = {with_bytes:.2f}")
    print(f"  orjson / models alone = {figures['orjson'] / figures['models_alone']:.0f}x")
    return figures


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
