"""Trend charts (one per instrument: severity bands shaded, infusion dates marked) and the dose chart.

matplotlib's object API on an explicit Agg canvas: no pyplot global state (safe in threaded web workers), no
display. SVG for HTML, PNG for PDF; output is byte-stable for the same data (fixed hash salt, no dates).
"""

from __future__ import annotations

import io
from datetime import datetime

import matplotlib
from matplotlib import dates as mdates
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from integration.summaries.model import Outcome, Session

# SVG element ids from a fixed salt, not random. Set once: rc_context() per render would swap the global
# rcParams back and forth under concurrent requests.
matplotlib.rcParams["svg.hashsalt"] = "horizon-summaries"
_BAND_COLOURS = ("#e8f5e9", "#fffde7", "#fff3e0", "#ffebee", "#fce4ec")
_METADATA = {"svg": {"Date": None, "Creator": None}, "png": {"Software": None}}


def _render(fig: Figure, fmt: str) -> bytes:
    FigureCanvasAgg(fig)
    out = io.BytesIO()
    fig.savefig(out, format=fmt, dpi=110, metadata=_METADATA[fmt])
    return out.getvalue()


def _infusion_lines(ax: object, infusions: list[datetime]) -> None:
    for i, moment in enumerate(infusions):
        ax.axvline(  # type: ignore[attr-defined]
            mdates.date2num(moment),
            color="#7e57c2",
            linestyle=":",
            linewidth=0.9,
            label="ketamine infusion" if i == 0 else None,
        )


def trend_chart(outcome: Outcome, infusions: list[datetime], fmt: str = "svg") -> bytes:
    """The instrument's scores over time, over its severity bands, with the infusion dates marked."""
    fig = Figure(figsize=(7.4, 2.9))
    # Fixed margins instead of a tight bounding box, which costs a second full draw; room on the right
    # for the band labels.
    fig.subplots_adjust(left=0.08, right=0.78, top=0.88, bottom=0.22)
    ax = fig.add_subplot()
    for i, band in enumerate(outcome.bands):
        ax.axhspan(band.low, band.high + 1, color=_BAND_COLOURS[i % len(_BAND_COLOURS)], zorder=0)
        ax.text(
            1.01,
            (band.low + band.high + 1) / 2,
            band.label,
            transform=ax.get_yaxis_transform(),
            fontsize=6,
            va="center",
        )
    _infusion_lines(ax, infusions)
    xs = [mdates.date2num(s.at) for s in outcome.scores]
    ys = [s.value for s in outcome.scores]
    ax.plot(xs, ys, marker="o", color="#1565c0", linewidth=1.6, label=f"{outcome.title} score", zorder=3)
    if outcome.baseline is not None:
        ax.axhline(outcome.baseline.value, color="#90a4ae", linestyle="--", linewidth=0.8, label="baseline")
    ax.set_ylim(0, outcome.scale_max)
    ax.set_ylabel("score")
    ax.set_title(f"{outcome.title} over time", fontsize=10)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))
    ax.tick_params(axis="x", labelsize=7, rotation=30)
    ax.legend(fontsize=6, loc="upper right")
    return _render(fig, fmt)


def dose_chart(sessions: tuple[Session, ...], fmt: str = "svg") -> bytes:
    """Ketamine per session: total mg as bars, mg/kg as a line on its own axis."""
    given = [s for s in sessions if s.ketamine is not None and s.ketamine.dose_mg is not None]
    fig = Figure(figsize=(7.4, 2.7))
    fig.subplots_adjust(left=0.09, right=0.9, top=0.88, bottom=0.2)
    ax = fig.add_subplot()
    labels = [s.start.strftime("%m-%d") for s in given]
    totals = [s.ketamine.dose_mg for s in given if s.ketamine]
    per_kg = [
        s.ketamine.per_kg if s.ketamine and s.ketamine.per_kg is not None else float("nan") for s in given
    ]
    positions = list(range(len(given)))
    ax.bar(positions, totals, color="#80cbc4", label="total mg")
    ax.set_ylabel("ketamine (mg)")
    ax.set_xticks(positions, labels, fontsize=7, rotation=30)
    twin = ax.twinx()
    twin.plot(positions, per_kg, color="#d84315", marker="s", label="mg/kg")
    twin.set_ylabel("mg/kg")
    twin.set_ylim(0, max([1.0, *[v for v in per_kg if v == v]]) * 1.2)
    ax.set_title("Ketamine dose per session", fontsize=10)
    if not given:
        ax.text(0.5, 0.5, "no ketamine infusions in the period", transform=ax.transAxes, ha="center")
    handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    ax.legend(handles, [str(h.get_label()) for h in handles], fontsize=6, loc="upper left")
    return _render(fig, fmt)


def infusion_times(sessions: tuple[Session, ...]) -> list[datetime]:
    return [s.ketamine.start or s.start for s in sessions if s.ketamine is not None]
