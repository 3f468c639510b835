"""Bytes: compact sorted-key R4 JSON; the fast path gives exactly the model's bytes."""

from __future__ import annotations

import orjson

from mappings.serialize import dict_bytes, map_record_bytes, to_json_bytes
from tests.mappings.conftest import make_ctx
from tests.mappings.helpers import med, phq9, session


def test_fast_bytes_equal_model_bytes() -> None:
    pairs = map_record_bytes(
        "session", session(medications=[med()], assessments=[phq9(1, 2, 3, 0, 1, 2, 3, 0, 1)]), make_ctx()
    )
    for model, data in pairs:
        assert data == to_json_bytes(model)


def test_bytes_are_sorted_compact_and_without_nulls() -> None:
    _, data = map_record_bytes("session", session(), make_ctx())[0]
    parsed = orjson.loads(data)
    assert list(parsed) == sorted(parsed)
    assert b"null" not in data
    assert dict_bytes(parsed) == data, "compact: re-dumping the parsed bytes gives the same bytes"
    assert "meta" in parsed and "versionId" not in parsed["meta"] and "lastUpdated" not in parsed["meta"]
