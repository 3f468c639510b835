"""The summary as a PDF for people (reportlab platypus): safety signals first, tables, PNG trend charts.

Every string goes into a Paragraph through `escape`, since reportlab parses Paragraph text as markup.
`invariant` makes the bytes depend on the content only (no creation date or random document id).
"""

from __future__ import annotations

import io
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import LETTER
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import inch
from reportlab.platypus import Flowable, Image, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from integration.summaries import charts
from integration.summaries import sections as text
from integration.summaries.model import Summary

_STYLES = getSampleStyleSheet()
_CELL = ParagraphStyle("cell", parent=_STYLES["BodyText"], fontSize=7.5, leading=9)
_ALERT = ParagraphStyle(
    "alert",
    parent=_STYLES["BodyText"],
    textColor=colors.HexColor("#b71c1c"),
    backColor=colors.HexColor("#ffebee"),
    borderColor=colors.HexColor("#c62828"),
    borderWidth=1.5,
    borderPadding=6,
    fontName="Helvetica-Bold",
    spaceAfter=10,
)
_WIDTH = 7.0 * inch


def _p(value: str, style: ParagraphStyle = _STYLES["BodyText"]) -> Paragraph:
    return Paragraph(escape(value), style)


def _table(t: text.Table) -> Table:
    data = [[_p(h, _CELL) for h in t.headers], *[[_p(c, _CELL) for c in row] for row in t.rows]]
    table = Table(data, colWidths=[_WIDTH / len(t.headers)] * len(t.headers), repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eceff1")),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    return table


def _chart(png: bytes) -> Image:
    image = Image(io.BytesIO(png))
    scale = _WIDTH / image.imageWidth
    image.drawWidth, image.drawHeight = _WIDTH, image.imageHeight * scale
    return image


def render_pdf(summary: Summary) -> bytes:
    story: list[Flowable] = [
        _p(f"Treatment summary: {summary.patient.name}", _STYLES["Title"]),
        _p(
            f"Period: {text.period_text(summary)}. Generated {text.when(summary.generated_at)}"
            f" by {summary.clinic.name}."
        ),
        Spacer(1, 8),
    ]
    infusions = charts.infusion_times(summary.sessions)
    for section in text.all_sections(summary):
        story.extend(_p(alert, _ALERT) for alert in section.alerts)
        story.append(_p(section.title, _STYLES["Heading2"]))
        story.extend(_p(para) for para in section.paragraphs)
        for t in section.tables:
            story.extend((Spacer(1, 4), _table(t), Spacer(1, 6)))
        if section.empty:
            story.append(_p("Nothing recorded."))
        if section.key == "outcomes":
            story.extend(
                _chart(charts.trend_chart(o, infusions, "png")) for o in summary.outcomes if o.scores
            )
        if section.key == "course" and summary.sessions:
            story.append(_chart(charts.dose_chart(summary.sessions, "png")))
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=LETTER,
        leftMargin=0.75 * inch,
        rightMargin=0.75 * inch,
        title="Treatment summary",
        author=summary.clinic.name,
        invariant=1,
    )
    doc.build(story)
    return out.getvalue()
