"""Charts exist, have a sensible size, are stable for the same data and change when the data changes."""

from __future__ import annotations

import struct

from lxml import etree

from integration.summaries import charts
from tests.summaries.test_compute import course, summarize


def _png_size(png: bytes) -> tuple[int, int]:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    return struct.unpack(">II", png[16:24])


def _phq9(latest: float):
    s = summarize(course(latest=latest))
    return s, s.outcomes[0]


def test_trend_chart_png_and_svg():
    s, outcome = _phq9(9)
    infusions = charts.infusion_times(s.sessions)
    png = charts.trend_chart(outcome, infusions, "png")
    width, height = _png_size(png)
    assert 500 <= width <= 1200 and 200 <= height <= 600
    assert 5_000 < len(png) < 300_000
    svg = charts.trend_chart(outcome, infusions, "svg")
    root = etree.fromstring(svg, etree.XMLParser(resolve_entities=False, no_network=True))
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert charts.trend_chart(outcome, infusions, "svg") == svg  # byte-stable


def test_trend_chart_changes_with_scores_and_infusions():
    s, outcome = _phq9(9)
    infusions = charts.infusion_times(s.sessions)
    base = charts.trend_chart(outcome, infusions, "png")
    assert charts.trend_chart(_phq9(3)[1], infusions, "png") != base
    assert charts.trend_chart(outcome, infusions[:1], "png") != base


def test_dose_chart_changes_with_the_dose():
    s = summarize(course(latest=9))
    png = charts.dose_chart(s.sessions, "png")
    assert 500 <= _png_size(png)[0] <= 1200
    fewer = charts.dose_chart(s.sessions[:2], "png")
    assert fewer != png
    assert charts.dose_chart((), "png").startswith(b"\x89PNG")  # an empty period still renders
