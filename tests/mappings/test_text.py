"""Free text survives as valid FHIR strings, markdown and XHTML."""

from __future__ import annotations

import re

import pytest

from mappings.text import clean_text, markdown, xhtml_div

FHIR_STRING = re.compile(r"^[ \r\n\t\S]+$")


@pytest.mark.parametrize(
    "raw, cleaned",
    [
        ("plain", "plain"),
        ("  padded\t", "padded"),
        ("form\x0cfeed and\u00a0nbsp and\u2028line", "form feed and nbsp and line"),
        ("nul\x00 and bell\x07", "nul\ufffd and bell\ufffd"),
        ("lone \ud800 surrogate", "lone \ufffd surrogate"),
        ("multi\nline\r\nnote", "multi\nline\r\nnote"),
        ("émoji 💉 日本", "émoji 💉 日本"),
    ],
)
def test_clean_text(raw: str, cleaned: str) -> None:
    assert clean_text(raw) == cleaned
    assert FHIR_STRING.match(cleaned)


@pytest.mark.parametrize("raw", ["", "   ", "\x0b\x0c", None])
def test_blank_becomes_none(raw: str | None) -> None:
    assert clean_text(raw) is None


@pytest.mark.parametrize(
    "raw, escaped",
    [
        ("*BP* 150/90 <b>", r"\*BP\* 150/90 \<b>"),
        ("a_b [x](y) `c` ~20 min", r"a\_b \[x\](y) \`c\` \~20 min"),
        ("back\\slash", "back\\\\slash"),
        ("A & B &amp; &#60;", r"A & B \&amp; \&#60;"),
        ("# not a heading\n > not a quote\nBP > 140 #2", "\\# not a heading\n \\> not a quote\nBP > 140 #2"),
        ("Tolerated well; BP 150/90 at 20 min.", "Tolerated well; BP 150/90 at 20 min."),
    ],
)
def test_markdown_escapes_only_what_would_render(raw: str, escaped: str) -> None:
    assert markdown(raw) == escaped


def test_xhtml_div_escapes() -> None:
    div = xhtml_div(["a < b & c", "<script>"])
    assert div == (
        '<div xmlns="http://www.w3.org/1999/xhtml"><p>a &lt; b &amp; c</p><p>&lt;script&gt;</p></div>'
    )
