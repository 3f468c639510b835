"""One summary, any format: the name of each format, its media type and its renderer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import orjson

from integration.summaries.ccda import consultation_note
from integration.summaries.fhir_document import document_bundle
from integration.summaries.html_report import render_html
from integration.summaries.pdf_report import render_pdf
from integration.summaries.service import SummaryInput


@dataclass(frozen=True, slots=True)
class Format:
    media_type: str
    render: Callable[[SummaryInput], bytes]


FORMATS: dict[str, Format] = {
    "html": Format("text/html; charset=utf-8", lambda s: render_html(s.summary).encode("utf-8")),
    "pdf": Format("application/pdf", lambda s: render_pdf(s.summary)),
    "ccda": Format("application/xml", lambda s: consultation_note(s.summary, s.resources)),
    "fhir": Format(
        "application/fhir+json",
        lambda s: orjson.dumps(document_bundle(s.summary, s.resources, base_url=s.base_url)),
    ),
}
