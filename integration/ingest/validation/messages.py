"""How a rejected value is described to the sender: in JSON terms, never echoing long text or records."""

from __future__ import annotations

SHOWN = 40  # longer strings are described by their length, never echoed (they may be clinical free text)


def describe(value: object) -> str:
    """Say what was found, in JSON terms, without echoing long text or whole structures."""
    t = type(value)
    if isinstance(value, str):
        if not value:
            return "an empty string"
        if value.isspace():
            return "a whitespace-only string"
        if len(value) > SHOWN:
            return f"a {len(value)}-character string"
        return quote(value)
    if value is None:
        return "null"
    if t is bool:
        return "true" if value else "false"
    if t is int:
        return str(value) if value.bit_length() < 64 else "a very large integer"  # type: ignore[attr-defined]
    if t is float:
        return "NaN" if value != value else repr(value).replace("inf", "Infinity")
    if isinstance(value, list):
        return f"an array of {len(value)} item{'' if len(value) == 1 else 's'}"
    if isinstance(value, dict):
        return "an object"
    return f"a {t.__name__}"


def quote(text: str) -> str:
    """Double-quote a short string; control characters and lone surrogates come out escaped."""
    if not text.isprintable():
        text = text.encode("unicode_escape").decode("ascii")
    return f'"{text}"'


def path_key(key: object) -> str:
    """A field name as it may appear in a path: short and printable (unknown keys come from the sender)."""
    if isinstance(key, str) and len(key) <= SHOWN and key.isprintable():
        return key
    text = key if isinstance(key, str) else repr(key)
    return quote(text[:SHOWN] + ("..." if len(text) > SHOWN else ""))
