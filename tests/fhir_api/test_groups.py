"""Referrer Groups through the FHIR API: a client registered with `--group` sees exactly its patients."""

import orjson
from sqlalchemy import select

from integration.ingest import synthetic
from integration.store.schema import fhir_resource
from mappings.group import referrer_group_id
from mappings.ids import resource_id
from tests.auth.test_smart_support import assertion, form, register


def _headers(client, db, name, group_id=None):
    client_id = register(db, name=name, group_id=group_id)
    token = client.post("/auth/token", data=form(assertion(client_id))).json["access_token"]
    return {"Authorization": f"Bearer {token}"}


def test_a_client_registered_for_a_referrer_group_sees_exactly_its_patients(client, db, clinic_headers):
    batch = synthetic.batch(seed=12, n_patients=10, sessions_per_patient=0)
    response = client.post(
        "/api/v1/batch", data=orjson.dumps(batch), headers=clinic_headers, content_type="application/json"
    )
    assert response.json["summary"]["rejected"] == 0
    referrer = batch["referrals"][0]["practitioner_id"]
    mine = {
        resource_id("patient", r["patient_id"])
        for r in batch["referrals"]
        if r["practitioner_id"] == referrer
    }
    group_id = referrer_group_id(referrer)
    # The id an admin finds with `flask --app wsgi groups list` is the one the client is registered with.
    listed = (
        client.application.test_cli_runner().invoke(args=["groups", "list", "--referrer", referrer]).output
    )
    assert listed.startswith(group_id)
    headers = _headers(client, db, "referrer-ehr", group_id)
    with db.reader() as conn:
        patients = set(
            conn.execute(
                select(fhir_resource.c.id).where(fhir_resource.c.resource_type == "Patient")
            ).scalars()
        )
    assert mine and patients - mine
    seen = {p for p in patients if client.get(f"/fhir/Patient/{p}", headers=headers).status_code == 200}
    assert seen == mine
    group = client.get(f"/fhir/Group/{group_id}", headers=headers)
    assert group.status_code == 200
    assert {m["entity"]["reference"] for m in group.json["member"]} == {f"Patient/{p}" for p in mine}
    other = next(r["practitioner_id"] for r in batch["referrals"] if r["practitioner_id"] != referrer)
    assert client.get(f"/fhir/Group/{referrer_group_id(other)}", headers=headers).status_code == 404
