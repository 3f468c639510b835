"""Shared helpers for the delivery tests: a referrer table, a preparer, one patient's series."""

from __future__ import annotations

from typing import Any

from integration.ingest import synthetic
from integration.summaries.prepare import Preparer
from integration.summaries.referrers import Referrer, parse_referrer

# synthetic.batch(seed=2, n_patients=1, sessions_per_patient=6): MRN100001 referred by prac-0003, one series
# of six (sessions stopped and completed), PHQ-9 item 9 above 0 at some visits.
REFERRER_ID = "prac-0003"
OTHER_REFERRER_ID = "prac-0006"


def series_batch() -> dict:
    return synthetic.batch(seed=2, n_patients=1, sessions_per_patient=6)


def referrer(**overrides: Any) -> Referrer:
    table: dict[str, Any] = {
        "name": "dr-ref",
        "kind": "referrer",
        "practitioner": REFERRER_ID,
        "channel": "fhir",
        "url": "https://referrer.example.org/fhir",
        "triggers": ["session-completed", "series-completed", "safety-signal"],
    }
    table.update(overrides)
    return parse_referrer({k: v for k, v in table.items() if v is not None})


def preparer(app, *referrers: Referrer) -> Preparer:
    return Preparer(
        app.extensions["horizon.db"],
        app.config["HORIZON_SETTINGS"],
        app.extensions["horizon.mapping"],
        {r.name: r for r in referrers},
    )
