"""Treatment summaries per second, per format, for one patient with a full series (issue 6, item 6).

The patient (a series of six sessions, ~90 stored resources a session) is ingested through the real intake
API into a fresh SQLite database. Each figure times the whole path the admin preview takes: load the
patient's resources, compute the summary, render the format. The floor is load + compute alone. Best of
interleaved rounds (the box is shared), each bounded in count and time, GC handled by `timed`.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from bench.harness import fresh_sqlite, timed
from integration.app import create_app
from integration.ingest import synthetic
from integration.settings import Settings
from integration.store.tokens import TokenRepository
from integration.summaries.model import Period
from integration.summaries.render import FORMATS
from integration.summaries.service import build
from mappings.ids import resource_id

SESSIONS = 6
ROUND_SECONDS = 1.5  # per figure per round: enough repetitions to time, never minutes


def _loaded_app(tmp: Path) -> tuple[object, str]:
    url = fresh_sqlite(tmp)
    app = create_app(Settings.load(environ={}, database_url=url, log_level="WARNING"))
    with app.extensions["horizon.db"].writer() as conn:
        token = TokenRepository(conn).create("bench-summaries", "clinic")
    body = synthetic.batch(seed=2, n_patients=1, sessions_per_patient=SESSIONS)
    response = app.test_client().post(
        "/api/v1/batch",
        data=orjson.dumps(body),
        headers={"Authorization": f"Bearer {token}"},
        content_type="application/json",
    )
    assert response.status_code == 200 and response.json["summary"]["rejected"] == 0, response.json
    return app, resource_id("patient", body["patients"][0]["id"])


def _rate(fn: Callable[[], object], budget: float = ROUND_SECONDS, cap: int = 200) -> float:
    """Summaries per second: repeat `fn` until the budget or the cap is spent (at least once)."""
    count = 0
    deadline = time.perf_counter() + budget

    def run() -> None:
        nonlocal count
        while count < cap:
            fn()
            count += 1
            if time.perf_counter() >= deadline:
                break

    elapsed = timed(run)  # (before reading count: the run sets it)
    return count / elapsed


def main(rounds: int = 3) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        app, patient = _loaded_app(Path(tmp))
        db, settings, ctx = (
            app.extensions["horizon.db"],
            app.config["HORIZON_SETTINGS"],
            app.extensions["horizon.mapping"],
        )

        def load_compute():  # noqa: ANN202
            return build(db, settings, ctx, patient, Period())

        sample = load_compute()
        print(
            f"one patient, {len(sample.summary.sessions)} sessions, {len(sample.resources)} resources;"
            f" best of {rounds} rounds (SQLite)"
        )
        cases: dict[str, Callable[[], object]] = {"load + compute (floor)": load_compute}
        for name, spec in FORMATS.items():
            cases[f"load + compute + {name}"] = lambda spec=spec: spec.render(load_compute())
        best = dict.fromkeys(cases, 0.0)
        for _ in range(rounds):
            for label, fn in cases.items():
                best[label] = max(best[label], _rate(fn))
        for label, rate in best.items():
            size = (
                ""
                if label.endswith("(floor)")
                else f"{len(FORMATS[label.rsplit(' ', 1)[1]].render(sample)):>9,} bytes"
            )
            print(f"  {label:<40} {rate:>10,.1f} summaries/s  {size}")
        app.extensions["horizon.db"].engine.dispose()
    return best


if __name__ == "__main__":
    main()
