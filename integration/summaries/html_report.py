"""The summary as one self-contained HTML page for people: safety signals first, tables, trend charts.

Jinja2 with autoescape renders every string as text; charts are SVG images in `data:` URIs, so no
generated markup is inlined into the page.
"""

from __future__ import annotations

import base64
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from integration.summaries import charts
from integration.summaries import sections as text
from integration.summaries.model import Summary

_ENV = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=select_autoescape(default=True, default_for_string=True),
)
_TEMPLATE = _ENV.get_template("summary.html")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def render_html(summary: Summary) -> str:
    infusions = charts.infusion_times(summary.sessions)
    trend = [
        {"alt": f"{o.title} over time", "data": _b64(charts.trend_chart(o, infusions, "svg"))}
        for o in summary.outcomes
        if o.scores
    ]
    all_sections = text.all_sections(summary)
    safety = all_sections[0]
    return _TEMPLATE.render(
        title=f"Treatment summary: {summary.patient.name}",
        patient=summary.patient.name,
        birth=summary.patient.birth_date.isoformat() if summary.patient.birth_date else None,
        period=text.period_text(summary),
        generated=text.when(summary.generated_at),
        clinic=summary.clinic.name,
        alerts=safety.alerts,
        sections=all_sections,
        trend_charts=trend,
        dose_chart=_b64(charts.dose_chart(summary.sessions, "svg")) if summary.sessions else None,
    )
