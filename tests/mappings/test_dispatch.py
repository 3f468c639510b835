"""The entry point: every kind, unknown kinds refused, static resources, models returned."""

from __future__ import annotations

import pytest

from mappings import KINDS, map_record, static_resources
from mappings.errors import UnknownCodeError
from tests.mappings.conftest import make_ctx
from tests.mappings.helpers import session


def test_kinds() -> None:
    assert set(KINDS) == {"patient", "practitioner", "session", "assessment", "referral"}


def test_unknown_kind_raises() -> None:
    with pytest.raises(UnknownCodeError):
        map_record("vitals", {}, make_ctx())


def test_map_record_returns_r4b_models() -> None:
    resources = map_record("session", session(), make_ctx())
    assert [type(r).__module__.split(".")[2] for r in resources] == ["R4B"] * len(resources)
    assert [r.get_resource_type() for r in resources] == [
        "Encounter",
        "Condition",
        "Procedure",
        "Observation",
        "Provenance",
    ]


def test_static_resources() -> None:
    kinds = [r.get_resource_type() for r in static_resources(make_ctx())]
    assert kinds[:2] == ["Organization", "Device"]
    assert kinds.count("Questionnaire") == 7 and kinds.count("CodeSystem") == 10
