"""Probes, request ids, error shape and what reaches the logs."""

import logging

import orjson
import requests
from sqlalchemy import text

from integration.ingest import synthetic
from integration.store import migrate


def test_healthz_and_readyz(client):
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json["checks"] == {"database": "ok", "migrations": "ok"}


def test_readyz_is_503_when_migrations_are_behind(client, db):
    with db.writer() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'older'"))
    try:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json["checks"]["migrations"].startswith("at older")
    finally:
        with db.writer() as conn:
            conn.execute(
                text("UPDATE alembic_version SET version_num = :head"), {"head": migrate.head_revision()}
            )


def test_request_id_is_echoed_or_made(client):
    assert (
        client.get("/healthz", headers={"X-Request-ID": "abc-12345678"}).headers["X-Request-ID"]
        == "abc-12345678"
    )
    made = client.get("/healthz", headers={"X-Request-ID": "bad id <script>"}).headers["X-Request-ID"]
    assert len(made) == 32


def test_unknown_route_and_method_are_json_errors(client, clinic_headers):
    assert client.get("/nowhere").json["error"]["status"] == 404
    response = client.delete("/api/v1/patients/x", headers=clinic_headers)
    assert response.status_code == 405 and response.json["error"]["code"] == "method-not-allowed"


def test_logs_carry_no_phi_and_no_token(client, clinic_token, clinic_headers, caplog):
    batch = synthetic.batch(seed=3, n_patients=1, sessions_per_patient=1)
    patient = batch["patients"][0]
    patient["family"] = "Zzyzxquux"
    with caplog.at_level(logging.DEBUG):
        client.post(
            "/api/v1/batch", data=orjson.dumps(batch), headers=clinic_headers, content_type="application/json"
        )
        client.get(f"/api/v1/patients/{patient['id']}", headers=clinic_headers)
        client.put(
            f"/api/v1/patients/{patient['id']}",
            data=b"{",
            headers=clinic_headers,
            content_type="application/json",
        )
    from integration.logs import JsonFormatter

    text_out = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    assert "request" in text_out
    for secret in ("Zzyzxquux", patient["id"], clinic_token, patient["birth_date"]):
        assert secret not in text_out
    routes = [r.route for r in caplog.records if getattr(r, "route", None)]
    assert "/api/v1/<collection>/<record_id>" in routes


def test_real_http_server_serves_intake(live_server, clinic_headers):
    batch = synthetic.batch(seed=5, n_patients=1, sessions_per_patient=2)
    response = requests.post(
        f"{live_server}/api/v1/batch",
        data=orjson.dumps(batch),
        headers={**clinic_headers, "Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 200
    assert response.json()["summary"]["rejected"] == 0
    assert requests.get(f"{live_server}/readyz", timeout=10).status_code == 200
