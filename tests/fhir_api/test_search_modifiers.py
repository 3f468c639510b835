"""Search modifiers `:missing` (every indexed parameter type) and `:not` (tokens), as advertised."""

from datetime import UTC, datetime

import orjson
import pytest

from integration.store.resources import ResourceRepository, ResourceWrite
from tests.fhir_api.search_support import ids, token

PATIENTS = {
    "p1": {
        "name": [{"family": "Alpha", "given": ["Ann"]}],
        "gender": "male",
        "birthDate": "1970-01-01",
        "managingOrganization": {"reference": "Organization/org-1"},
        "identifier": [{"system": "urn:mrn", "value": "1"}],
    },
    "p2": {"gender": "female", "identifier": [{"system": "urn:other", "value": "2"}]},
    "p3": {"name": [{"family": "Gamma"}], "birthDate": "1980-05-05"},
}


@pytest.fixture
def headers(client, db):
    writes = [
        ResourceWrite(
            "Patient", pid, 1, pid, orjson.dumps({"resourceType": "Patient", "id": pid, **body}).decode(), pid
        )
        for pid, body in PATIENTS.items()
    ]
    with db.writer() as conn:
        ResourceRepository(conn).write(writes, now=datetime.now(UTC))
    return {**token(client, db), "Prefer": "handling=strict"}


def _found(client, headers, query):
    response = client.get(f"/fhir/Patient?{query}&_count=100", headers=headers)
    assert response.status_code == 200, response.json
    return set(ids(response.json))


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("family:missing=true", {"p2"}),
        ("family:missing=false", {"p1", "p3"}),
        ("gender:missing=true", {"p3"}),
        ("birthdate:missing=true", {"p2"}),
        ("birthdate:missing=false", {"p1", "p3"}),
        ("organization:missing=true", {"p2", "p3"}),
        ("organization:missing=false", {"p1"}),
        ("gender:not=male", {"p2", "p3"}),  # p3 has no gender: R4 counts it as "not male"
        ("gender:not=male,female", {"p3"}),  # none of the codes
        ("gender:not=male&gender:not=female", {"p3"}),
        ("identifier:not=urn:mrn|1", {"p2", "p3"}),
        ("identifier:not=|1", {"p1", "p2", "p3"}),  # p1's 1 has a system
        ("gender:not=female&birthdate:missing=false", {"p1", "p3"}),
        ("family=gam&gender:missing=true", {"p3"}),
        ("_id=p1,p2&gender:not=female", {"p1"}),
    ],
)
def test_modifiers(client, headers, query, expected):
    assert _found(client, headers, query) == expected


@pytest.mark.parametrize(
    "query",
    [
        "family:missing=yes",
        "family:missing=true,false",
        "family:not=Alpha",
        "birthdate:not=1970",
        "gender:nope=x",
    ],
)
def test_unsupported_modifier_values_are_400(client, headers, query):
    response = client.get(f"/fhir/Patient?{query}", headers=headers)
    assert response.status_code == 400
    assert response.json["resourceType"] == "OperationOutcome"


def test_every_advertised_modifier_is_accepted(client, db, headers):
    statement = client.get("/fhir/metadata").json
    tried = 0
    for resource in statement["rest"][0]["resource"]:
        for param in resource["searchParam"]:
            listed = param.get("documentation", "").split(";")[0].removeprefix("modifiers ")
            for modifier in (m.strip() for m in listed.split(",") if m.strip()):
                if modifier in (":[type]", ":exact", ":contains"):
                    continue  # covered by test_search
                value = {":missing": "true", ":not": "x"}[modifier]
                response = client.get(
                    f"/fhir/{resource['type']}",
                    query_string={param["name"] + modifier: value},
                    headers=headers,
                )
                assert response.status_code == 200, (resource["type"], param["name"], modifier)
                tried += 1
    assert tried > 100
