"""The server as a real EHR sees it: fhirpy (a FHIR client library from PyPI) over real HTTP.

A client registered through the CLI gets a SMART token from /auth/token over HTTP, then reads,
searches, pages and includes through the library; every resource it receives must validate against
the official R4 JSON schema, and a Group-restricted client must see its patients only.
"""

from datetime import datetime

import pytest
import requests
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import ResourceNotFound

from tests.auth.test_smart_support import assertion, ec_key, form, jwks_text, public_jwk, rsa_key
from tests.fhir_api.search_support import store, store_group, stored
from tests.mappings.conformance import SCHEMA_PATH, schema_errors

pytestmark = pytest.mark.skipif(
    not SCHEMA_PATH.exists(), reason="../shared/reference/fhir-r4-schema is not beside the clone"
)
HEART_RATE = "8867-4"
LOINC = "http://loinc.org"


@pytest.fixture
def data(client, clinic_headers):
    return store(client, clinic_headers, seed=7, patients=3, sessions=3)


def _register_with_cli(app, tmp_path, name: str, scopes: str, group: str | None = None) -> str:
    """`flask --app wsgi clients register ...` as an admin runs it; the id is the last line."""
    jwks = tmp_path / f"{name}.jwks.json"
    jwks.write_text(jwks_text(public_jwk(rsa_key(), "rsa-1"), public_jwk(ec_key(), "ec-1")))
    args = ["clients", "register", "--name", name, "--jwks-file", str(jwks), "--scopes", scopes]
    result = app.test_cli_runner().invoke(args=[*args, *(["--group", group] if group else [])])
    assert result.exit_code == 0, result.output
    return result.output.strip().splitlines()[-1]


def _fhir_client(base: str, client_id: str, scope: str) -> SyncFHIRClient:
    """A token from /auth/token over HTTP (ES384 assertion naming the advertised token URL), then fhirpy."""
    discovery = requests.get(f"{base}/.well-known/smart-configuration", timeout=10).json()
    signed = assertion(client_id, key=ec_key(), alg="ES384", kid="ec-1", aud=discovery["token_endpoint"])
    response = requests.post(f"{base}/auth/token", data=form(signed, scope=scope), timeout=10)
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    # Links in bundles use the configured public base URL; fhirpy maps that onto this server.
    public = discovery["token_endpoint"].removesuffix("/auth/token") + "/fhir"
    return SyncFHIRClient(
        f"{base}/fhir",
        authorization=f"Bearer {token}",
        url_aliases=[public],
        requests_config={"timeout": 30},
    )


def _valid(resource) -> dict:
    as_dict = resource.serialize() if hasattr(resource, "serialize") else dict(resource)
    # The published R4 schema's FHIRVersion enum stops before 4.0.1, the version R4 itself declares
    # (a known erratum of the 4.0.1 schema); that one error is excused, nothing else.
    errors = [e for e in schema_errors(as_dict) if not e.startswith("fhirVersion: '4.0.1' is not one of")]
    assert errors == [], (as_dict.get("resourceType"), as_dict.get("id"), errors[:5])
    return as_dict


def _heart_rates(db, patient_id: str) -> list[dict]:
    return [
        o
        for o in stored(db, "Observation")
        if o["subject"]["reference"] == f"Patient/{patient_id}"
        and any(c["system"] == LOINC and c["code"] == HEART_RATE for c in o["code"]["coding"])
    ]


def _when(observation: dict) -> datetime:
    return datetime.fromisoformat(observation["effectiveDateTime"])


def test_a_cli_registered_client_reads_searches_pages_and_includes(app, live_server, db, data, tmp_path):
    client_id = _register_with_cli(app, tmp_path, "st-marys-ehr", "system/*.rs")
    fhir = _fhir_client(live_server, client_id, "system/*.rs")

    metadata = fhir.execute("metadata", method="get")
    assert metadata["resourceType"] == "CapabilityStatement" and metadata["fhirVersion"] == "4.0.1"
    _valid(metadata)

    patient_id = data["patients"][1]["id"]
    patient = fhir.reference("Patient", _fhir_patient_id(db, patient_id)).to_resource()
    assert _valid(patient)["identifier"]
    fhir_patient = patient["id"]

    heart_rates = sorted(_heart_rates(db, fhir_patient), key=_when)
    assert len(heart_rates) >= 10, "the data must span several pages"
    cutoff = heart_rates[len(heart_rates) // 3]  # on the boundary: ge includes it
    expected = {o["id"] for o in heart_rates if _when(o) >= _when(cutoff)}
    search = fhir.resources("Observation").search(
        patient=fhir_patient, code=f"{LOINC}|{HEART_RATE}", date__ge=cutoff["effectiveDateTime"]
    )
    pages = search.limit(3)
    found = [_valid(o)["id"] for o in pages.fetch_all()]
    assert len(found) == len(expected) > 3
    assert set(found) == expected, "every match exactly once over all next links"
    assert pages.count() == len(expected)

    # The same search by reference form, with the patient included once on the first page.
    bundle = search.search(patient=f"Patient/{fhir_patient}").include("Observation", "patient").fetch_raw()
    modes = [(e["search"]["mode"], e["resource"]["resourceType"]) for e in bundle["entry"]]
    assert modes.count(("include", "Patient")) == 1
    assert {e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == "include"} == {
        fhir_patient
    }
    for entry in bundle["entry"]:
        _valid(entry["resource"])

    # Patient with everything that points at it: every Observation of the patient, and no other's.
    patients_bundle = (
        fhir.resources("Patient").search(_id=fhir_patient).revinclude("Observation", "patient").fetch_raw()
    )
    included = [e["resource"] for e in patients_bundle["entry"] if e["search"]["mode"] == "include"]
    assert {o["subject"]["reference"] for o in included} == {f"Patient/{fhir_patient}"}
    assert len(included) == len(
        [o for o in stored(db, "Observation") if o["subject"]["reference"] == f"Patient/{fhir_patient}"]
    )
    for resource in included:
        _valid(resource)


def test_a_group_client_sees_only_its_patients_through_the_library(app, live_server, db, data, tmp_path):
    mine, other = (_fhir_patient_id(db, p["id"]) for p in data["patients"][:2])
    store_group(db, "referrer-a", [mine])
    client_id = _register_with_cli(app, tmp_path, "referrer-a-ehr", "system/*.rs", group="referrer-a")
    fhir = _fhir_client(live_server, client_id, "system/*.rs")

    patients = fhir.resources("Patient").limit(2).fetch_all()
    assert [_valid(p)["id"] for p in patients] == [mine]
    with pytest.raises(ResourceNotFound):
        fhir.reference("Patient", other).to_resource()
    assert fhir.resources("Observation").search(patient=other).fetch_all() == []
    observations = fhir.resources("Observation").limit(50).fetch_all()
    assert observations and {o["subject"]["reference"] for o in observations} == {f"Patient/{mine}"}
    bundle = fhir.resources("Observation").include("Observation", "patient").limit(1000).fetch_raw()
    assert {e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == "include"} == {mine}
    revinclude = (
        fhir.resources("Patient").search(_id=f"{mine},{other}").revinclude("Observation", "patient")
    ).fetch_raw()
    subjects = {e["resource"].get("subject", {}).get("reference") for e in revinclude["entry"]}
    assert subjects == {None, f"Patient/{mine}"}
    assert fhir.resources("Group").fetch_all()[0]["id"] == "referrer-a"


def _fhir_patient_id(db, clinic_id: str) -> str:
    """The FHIR id of the Patient made from this clinic record (ids are derived, not the MRN)."""
    for patient in stored(db, "Patient"):
        if any(i.get("value") == clinic_id for i in patient.get("identifier", [])):
            return patient["id"]
    raise AssertionError(f"no Patient for {clinic_id}")
