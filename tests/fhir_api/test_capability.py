"""The CapabilityStatement tells the truth: every advertised parameter, include and revinclude works."""

import pytest
from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from integration.ingest.service import write_static_resources
from integration.store.search_extract import extract
from tests.fhir_api.search_support import ids, store, stored, token


@pytest.fixture
def statement(client):
    body = client.get("/fhir/metadata").json
    CapabilityStatement.model_validate(body)
    return {r["type"]: r for r in body["rest"][0]["resource"]}


def _value(rows, param):
    """A search value that must find the resource these index rows came from."""
    for name, system, code in sorted(rows.tokens, key=str):
        if name == param.name:
            return f"{system}|{code}" if system else code
    for name, value, _ in sorted(rows.strings):
        if name == param.name:
            return value[:3]
    for name, low, _ in sorted(rows.dates):
        if name == param.name:
            return "ge" + low.date().isoformat() if low.year > 1 else "le9999"
    for name, target_type, target_id in sorted(rows.references, key=str):
        if name == param.name:
            return f"{target_type}/{target_id}"
    return None


def test_every_advertised_search_parameter_finds_what_it_indexes(client, db, clinic_headers, ctx, statement):
    store(client, clinic_headers, patients=2, sessions=3)
    write_static_resources(db, ctx)
    headers = token(client, db)
    tried = 0
    for resource_type, entry in statement.items():
        resources = stored(db, resource_type)
        for param in entry["searchParam"]:
            name = param["name"]
            for resource in resources[:3]:
                if name == "_id":
                    value = resource["id"]
                elif name == "_lastUpdated":
                    value = "ge" + resource["meta"]["lastUpdated"][:10]
                else:
                    from integration.store.search_params import params_for

                    value = _value(extract(resource), params_for(resource_type)[name])
                if value is None:
                    continue
                response = client.get(
                    f"/fhir/{resource_type}",
                    query_string={name: value, "_id": resource["id"]},
                    headers={**headers, "Prefer": "handling=strict"},
                )
                assert response.status_code == 200, (resource_type, name, response.json)
                assert ids(response.json) == [resource["id"]], (resource_type, name, value)
                tried += 1
                break
    assert tried > 100


def test_every_advertised_include_and_revinclude_is_accepted(client, db, statement):
    headers = {**token(client, db), "Prefer": "handling=strict"}
    for resource_type, entry in statement.items():
        for include in entry.get("searchInclude", []):
            assert client.get(f"/fhir/{resource_type}?_include={include}", headers=headers).status_code == 200
        for revinclude in entry.get("searchRevInclude", []):
            response = client.get(f"/fhir/{resource_type}?_revinclude={revinclude}", headers=headers)
            assert response.status_code == 200, (resource_type, revinclude)
        for key in entry["documentation"].split("_sort: ")[1].split(" (")[0].split(", "):
            assert client.get(f"/fhir/{resource_type}?_sort=-{key}", headers=headers).status_code == 200
