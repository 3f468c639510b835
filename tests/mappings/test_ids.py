"""Ids are deterministic uuid5s that must never change; identifiers carry the clinic system URI."""

from __future__ import annotations

import uuid

import pytest

from mappings import ids
from tests.mappings.conftest import make_ctx


@pytest.mark.parametrize(
    "kind, parts",
    [
        ("patient", ("MRN-1001",)),
        ("vital-sign", ("S-1", "2026-03-02T17:00:00Z", "spo2")),
        ("series", ("MRN-1", "2")),
        ("patient", ("Ünïcode/ü",)),
    ],
)
def test_fast_uuid5_equals_stdlib(kind: str, parts: tuple[str, ...]) -> None:
    assert ids.resource_id(kind, *parts) == str(uuid.uuid5(ids.namespace(kind), ids._name(parts)))


def test_ids_are_pinned() -> None:
    """Changing ROOT, a kind name or a name recipe would re-key every resource already sent downstream."""
    assert str(ids.ROOT) == "ae35b1eb-66fd-43bb-9367-15348f43a180"
    assert ids.resource_id("patient", "MRN-1001") == "c135cc3a-dd9a-5dee-825d-bd45ea46478f"
    assert ids.resource_id("session", "S-2001") == str(uuid.uuid5(uuid.uuid5(ids.ROOT, "session"), "S-2001"))


def test_kinds_have_distinct_namespaces() -> None:
    assert len({ids.namespace(k) for k in ids.RESOURCE_TYPE}) == len(ids.RESOURCE_TYPE)
    assert ids.resource_id("session", "X") != ids.resource_id("session-procedure", "X")


def test_composite_names_are_unambiguous() -> None:
    assert ids.resource_id("series", "a/b", "c") != ids.resource_id("series", "a", "b/c")


def test_head_identifier_shapes() -> None:
    ctx = make_ctx()
    assert ids.head(ctx, "patient", "p", "MRN-1")["identifier"] == [
        {"system": "https://clinic.example.org/fhir/sid/patient", "value": "MRN-1"}
    ]
    assert ids.head(ctx, "assessment", "p", "A-1")["identifier"] == {
        "system": "https://clinic.example.org/fhir/sid/assessment",
        "value": "A-1",
    }
    assert isinstance(ids.head(ctx, "adverse-event", "p", "AE-1")["identifier"], dict)
    assert "identifier" not in ids.head(ctx, "provenance", "p", "S-1")


def test_reference_uses_type_and_id() -> None:
    assert ids.reference("session", "S-1") == {"reference": f"Encounter/{ids.resource_id('session', 'S-1')}"}
