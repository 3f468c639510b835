"""Index values from resources, driven by the search-parameter table (pure)."""

from datetime import UTC, datetime

import pytest

from integration.store.search_extract import HIGHEST, date_range, extract, normalize, split_reference
from integration.store.search_params import definitions, params_for, reference_params_to

OBSERVATION = {
    "resourceType": "Observation",
    "id": "o1",
    "identifier": [{"system": "urn:sid", "value": "A-1"}],
    "status": "final",
    "category": [{"coding": [{"system": "urn:cat", "code": "vital-signs"}]}],
    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}, {"code": "local-hr"}]},
    "subject": {"reference": "Patient/p1"},
    "encounter": {"reference": "https://x.example/fhir/Encounter/e1/_history/2"},
    "effectivePeriod": {"start": "2026-02-01T15:00:00-08:00"},
}


def test_every_parameter_of_an_observation_is_extracted():
    rows = extract(OBSERVATION)
    assert rows.tokens == {
        ("identifier", "urn:sid", "A-1"),
        ("status", None, "final"),
        ("category", "urn:cat", "vital-signs"),
        ("code", "http://loinc.org", "8867-4"),
        ("code", None, "local-hr"),
    }
    assert rows.references == {
        ("patient", "Patient", "p1"),
        ("subject", "Patient", "p1"),
        ("encounter", "Encounter", "e1"),
    }
    assert rows.dates == {("date", datetime(2026, 2, 1, 23, tzinfo=UTC), HIGHEST)}  # open period
    assert rows.strings == set()


def test_reference_targets_restrict_what_is_indexed():
    group_subject = {**OBSERVATION, "subject": {"reference": "Group/g1"}}
    refs = extract(group_subject).references
    assert ("subject", "Group", "g1") in refs and not any(p == "patient" for p, _, _ in refs)


def test_names_are_normalized_strings_and_birthdate_is_a_day():
    rows = extract(
        {
            "resourceType": "Patient",
            "name": [{"family": "Ñúñez", "given": ["Ana", "María"]}],
            "gender": "female",
            "birthDate": "1980-04-02",
        }
    )
    assert ("family", "nunez", "Ñúñez") in rows.strings
    assert {("name", "ana", "Ana"), ("given", "maria", "María"), ("name", "nunez", "Ñúñez")} <= rows.strings
    assert rows.tokens == {("gender", None, "female")}
    ((param, low, high),) = rows.dates
    assert (param, low.isoformat(), high.isoformat()) == (
        "birthdate",
        "1980-04-02T00:00:00+00:00",
        "1980-04-02T23:59:59.999999+00:00",
    )


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        ("2026", "2026-01-01T00:00:00+00:00", "2026-12-31T23:59:59.999999+00:00"),
        ("2026-02", "2026-02-01T00:00:00+00:00", "2026-02-28T23:59:59.999999+00:00"),
        ("2026-12", "2026-12-01T00:00:00+00:00", "2026-12-31T23:59:59.999999+00:00"),
        ("2026-02-01T15:00:00-08:00", "2026-02-01T23:00:00+00:00", "2026-02-01T23:00:00.999999+00:00"),
        ("2026-02-01T15:00Z", "2026-02-01T15:00:00+00:00", "2026-02-01T15:00:59.999999+00:00"),
        ("2026-02-01T15:00:00.250Z", "2026-02-01T15:00:00.250000+00:00", "2026-02-01T15:00:00.250999+00:00"),
    ],
)
def test_dates_stand_for_their_precision(text, low, high):
    found = date_range(text)
    assert found is not None and (found[0].isoformat(), found[1].isoformat()) == (low, high)


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        ("9999-12-31T23:00:00-05:00", "9999-12-31T23:59:59.999999+00:00", "9999-12-31T23:59:59.999999+00:00"),
        ("0001-01-01T00:00:00+05:00", "0001-01-01T00:00:00+00:00", "0001-01-01T00:00:00+00:00"),
        ("9999-12-31T23:59:59.9999999Z", "9999-12-31T23:59:59.999999+00:00", HIGHEST.isoformat()),
        ("9999-12", "9999-12-01T00:00:00+00:00", "9999-12-31T23:59:59.999999+00:00"),
        ("9999-12-31T20:00+05:00", "9999-12-31T15:00:00+00:00", "9999-12-31T15:00:59.999999+00:00"),
    ],
)
def test_ranges_past_the_representable_years_are_clamped(text, low, high):
    found = date_range(text)
    assert found is not None and (found[0].isoformat(), found[1].isoformat()) == (low, high)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2026-13",
        "2026-02-30",
        "26-01-01",
        "2026-02-01T25:00Z",
        "2026-02-01T10:00+15:00",
        "x",
        "\u0662\u0660\u0662\u0666",
        "2026-01-01\n",
    ],
)
def test_malformed_dates_are_refused(text):
    assert date_range(text) is None


def test_references_and_normalization():
    assert split_reference("Patient/123") == ("Patient", "123")
    assert split_reference("http://h/fhir/Patient/123/_history/4") == ("Patient", "123")
    assert split_reference("#contained") is None and split_reference("urn:uuid:1") is None
    assert normalize("  Van   DER  Berg ") == "van der berg"


def test_the_table_is_consistent():
    table = definitions()
    assert "Observation" in table and table["Observation"]["patient"].targets == frozenset({"Patient"})
    assert all(p.paths and all(p.paths) for params in table.values() for p in params.values())
    assert {(p.resource_type, p.name) for p in reference_params_to("Encounter")} >= {
        ("MedicationAdministration", "encounter"),
        ("Observation", "encounter"),
        ("Provenance", "target"),
    }
    assert params_for("Nope") == {}
