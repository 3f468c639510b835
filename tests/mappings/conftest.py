"""Fixtures for the mapping tests: a fixed clinic context, the R4 schema check, golden-file regeneration."""

from __future__ import annotations

import os

import pytest

from mappings import ClinicOrganization, KnownPractitioner, MappingContext
from mappings.records import Address
from tests.mappings.conformance import BASE, SCHEMA_PATH

PRACTITIONERS = {
    "P-ATT-1": "physician",
    "P-ATT-2": "anesthesiologist",
    "P-RN-1": "nurse",
    "P-RN-2": "nurse",
    "P-REF-1": "referrer",
}


def make_ctx(practitioners: dict[str, str] | None = PRACTITIONERS) -> MappingContext:
    """The clinic context every golden file was produced with."""
    return MappingContext(
        base_url=BASE,
        organization=ClinicOrganization(
            clinic_id="main",
            name="Horizon Infusion Clinic",
            npi="1234567893",
            address=Address(("2200 NW Lovejoy St", "Suite 300"), "Portland", "OR", "97210", "US"),
            phone="+1 503 555 0100",
        ),
        system_name="Horizon Chart",
        practitioners=None
        if practitioners is None
        else {k: KnownPractitioner(k, v) for k, v in practitioners.items()},
    )


@pytest.fixture(scope="session")
def ctx() -> MappingContext:
    return make_ctx()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite tests/mappings/golden/*.expected.json from the current mappers",
    )


@pytest.fixture(scope="session")
def update_golden(request: pytest.FixtureRequest) -> bool:
    """True with --update-golden (or UPDATE_GOLDEN=1): goldens are rewritten, read them before committing."""
    try:
        flag = bool(request.config.getoption("--update-golden"))
    except ValueError:  # option not registered when this conftest is not an initial one
        flag = False
    return flag or os.environ.get("UPDATE_GOLDEN") == "1"


@pytest.fixture(scope="session")
def schema_available() -> None:
    if not SCHEMA_PATH.exists():
        pytest.skip(f"official R4 JSON schema not found at {SCHEMA_PATH} (needs ../shared beside the repo)")
