"""Helpers shared by the search tests: stored data, tokens and page walking (no tests)."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from sqlalchemy import select

from integration.ingest import synthetic
from integration.store.resources import ResourceRepository, ResourceWrite
from integration.store.schema import fhir_resource
from tests.auth.test_smart_support import assertion, form, register


def send(client, headers, batch) -> None:
    response = client.post(
        "/api/v1/batch", data=orjson.dumps(batch), headers=headers, content_type="application/json"
    )
    assert response.json["summary"]["rejected"] == 0, response.json


def store(client, clinic_headers, seed=41, patients=2, sessions=2, mrn_prefix="MRN1"):
    """Store a synthetic batch; another `mrn_prefix` gives patients (and sessions) not stored yet."""
    batch = synthetic.batch(seed=seed, n_patients=patients, sessions_per_patient=sessions)
    batch = orjson.loads(orjson.dumps(batch).replace(b'"MRN1', f'"{mrn_prefix}'.encode()))
    send(client, clinic_headers, batch)
    return batch


def token(client, db, scope="system/*.rs", **options) -> dict[str, str]:
    client_id = register(db, name=f"ehr-{scope}-{sorted(options.items())}", scope=scope, **options)
    response = client.post("/auth/token", data=form(assertion(client_id), scope=scope))
    assert response.status_code == 200, response.json
    return {"Authorization": f"Bearer {response.json['access_token']}"}


def stored(db, resource_type) -> list[dict]:
    with db.reader() as conn:
        rows = conn.execute(
            select(fhir_resource.c.content)
            .where(fhir_resource.c.resource_type == resource_type, fhir_resource.c.deleted.is_(False))
            .order_by(fhir_resource.c.id)
        )
        return [orjson.loads(r.content) for r in rows]


def ids(bundle, mode="match") -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == mode]


def link(bundle, relation) -> str | None:
    return next((x["url"] for x in bundle["link"] if x["relation"] == relation), None)


def relative(url: str) -> str:
    """A link of the bundle as a path for the test client (links use the public base URL)."""
    return url[url.index("/fhir/") :]


def walk(client, headers, path) -> list[str]:
    """Every match id over all pages, following next links."""
    found: list[str] = []
    while path:
        response = client.get(path, headers=headers)
        assert response.status_code == 200, response.json
        found += ids(response.json)
        nxt = link(response.json, "next")
        path = relative(nxt) if nxt else None
    return found


def store_group(db, group_id: str, patient_ids) -> None:
    """A Group (actual, person) of these patients, written straight to the store."""
    content = orjson.dumps(
        {
            "resourceType": "Group",
            "id": group_id,
            "type": "person",
            "actual": True,
            "member": [{"entity": {"reference": f"Patient/{p}"}} for p in patient_ids],
        }
    ).decode()
    with db.writer() as conn:
        ResourceRepository(conn).write(
            [ResourceWrite("Group", group_id, 1, "h", content, None)], now=datetime.now(UTC)
        )
