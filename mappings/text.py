"""Make clinic free text safe for FHIR strings, markdown and XHTML without losing what the clinician wrote."""

from __future__ import annotations

import html
import re

# FHIR R4 string is `[ \r\n\t\S]+`: any other whitespace (form feed, NBSP, U+2028, ...) fails the official
# schema. Controls, lone surrogates and XML-forbidden noncharacters cannot travel in JSON/XML at all.
_ODD = re.compile(r"[^\S \t\r\n]|[\x00-\x08\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
# CommonMark/GFM syntax that would change how a plain-text note renders or inject raw HTML: emphasis, code,
# strike-through (GFM: one or two tildes, so "~20 min ... ~5 mg" would strike), links and tags anywhere;
# entity references; headings and quotes at a line start. Other punctuation stays unescaped, so consumers
# that show the raw text see few backslashes.
_MARKDOWN = re.compile(r"[\\`*_~\[\]<]|&(?=#|[A-Za-z0-9]+;)|^[ ]{0,3}[#>]", re.MULTILINE)


def _fix(match: re.Match[str]) -> str:
    return " " if match.group().isspace() else "\ufffd"


def clean_text(value: str | None) -> str | None:
    """`value` as a valid FHIR string (odd whitespace -> space, controls -> U+FFFD, trimmed), or None."""
    if value is None:
        return None
    text = _ODD.sub(_fix, value).strip()
    return text or None


def markdown(text: str) -> str:
    """Escape plain text for a FHIR `markdown` element so it renders exactly as typed."""
    return _MARKDOWN.sub(lambda m: m.group()[:-1] + "\\" + m.group()[-1], text)


def xhtml_div(paragraphs: list[str]) -> str:
    """A FHIR narrative div with one escaped paragraph per entry."""
    body = "".join(f"<p>{html.escape(p, quote=False)}</p>" for p in paragraphs)
    return f'<div xmlns="http://www.w3.org/1999/xhtml">{body}</div>'
