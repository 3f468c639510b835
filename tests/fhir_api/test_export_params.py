"""Kick-off parameters of $export, checked without HTTP."""

from datetime import UTC, datetime

import pytest

from integration.fhir_api.export_params import ExportParamError, parameters_pairs, parse_export_params

SERVED = ("Patient", "Observation")


def test_defaults_and_accepted_values():
    assert parse_export_params([], SERVED).output_format == "application/fhir+ndjson"
    parsed = parse_export_params(
        [
            ("_type", "Patient, Observation"),
            ("_type", "Patient"),
            ("_since", "2026-01-02T03:04:05Z"),
            ("_outputFormat", "ndjson"),
            ("_format", "json"),
        ],
        SERVED,
    )
    assert parsed.types == ("Patient", "Observation")
    assert parsed.since == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    # An unencoded + in a query string arrives as a space.
    assert (
        parse_export_params([("_since", "2026-01-02T03:04:05 01:00")], SERVED).since.utcoffset().seconds
        == 3600
    )


@pytest.mark.parametrize(
    "pairs",
    [
        [("_type", "Encounter")],
        [("_type", ",")],
        [("_since", "2026-01-02")],
        [("_since", "2026-01-02T03:04:05")],
        [("_since", "2026-01-02T03:04:05Z"), ("_since", "2026-01-03T03:04:05Z")],
        [("_outputFormat", "application/json")],
        [("patient", "Patient/1")],
        [("includeAssociatedData", "LatestProvenanceResources")],
    ],
)
def test_refused_parameters_name_themselves(pairs):
    with pytest.raises(ExportParamError) as refused:
        parse_export_params(pairs, SERVED)
    assert pairs[0][0].lstrip("_") in str(refused.value) or pairs[0][1].strip(",") in str(refused.value)


def test_parameters_body():
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "_type", "valueString": "Patient"},
            {"name": "_since", "valueInstant": "2026-01-01T00:00:00Z"},
        ],
    }
    assert parameters_pairs(body) == [("_type", "Patient"), ("_since", "2026-01-01T00:00:00Z")]
    for bad in (
        None,
        [],
        {"resourceType": "Bundle"},
        {"resourceType": "Parameters", "parameter": [{"valueString": "x"}]},
    ):
        with pytest.raises(ExportParamError):
            parameters_pairs(bad)
