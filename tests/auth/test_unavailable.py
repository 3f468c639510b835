"""A database that cannot answer a bearer-token check: 503 with Retry-After (an OperationOutcome on
/fhir, the JSON error elsewhere), logged without the token, audited when the audit log still works."""

import logging
import threading

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from integration.app import create_app
from integration.settings import Settings
from tests.auth.test_smart_support import audit_rows, reason
from tests.fhir_api.search_support import token

PRESENTED = "hzs_presented-token-that-must-not-be-logged"


@pytest.fixture
def down_app(database_url, tmp_path):
    """An app whose database does not answer: a directory as SQLite file, a closed port for PostgreSQL."""
    if database_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path}"
    else:
        url = make_url(database_url).set(port=1).render_as_string(hide_password=False)
    app = create_app(Settings.load(environ={}, database_url=url, log_level="WARNING", db_pool_size=2))
    yield app
    app.extensions["horizon.db"].engine.dispose()


def test_fhir_answers_503_operation_outcome_when_the_database_is_down(down_app, caplog):
    client = down_app.test_client()
    with caplog.at_level(logging.INFO):
        response = client.get("/fhir/Patient", headers={"Authorization": f"Bearer {PRESENTED}"})
    assert response.status_code == 503
    assert response.mimetype == "application/fhir+json"
    assert response.headers["Retry-After"] == "5"
    issue = response.json["issue"][0]
    assert (response.json["resourceType"], issue["code"]) == ("OperationOutcome", "transient")
    assert "retry later" in issue["diagnostics"]
    assert "the database is unavailable" in caplog.text
    assert PRESENTED not in caplog.text
    # Without a token there is nothing to look up, but the 401 cannot be audited: 503 as well.
    unaudited = client.get("/fhir/Patient")
    assert unaudited.status_code == 503 and unaudited.headers["Retry-After"] == "5"
    assert unaudited.json["resourceType"] == "OperationOutcome"


def test_fhir_read_answers_503_when_the_database_is_down(down_app):
    # A read opens its connection before the token check runs on it: that failure is a 503 too.
    response = down_app.test_client().get(
        "/fhir/Patient/p1", headers={"Authorization": f"Bearer {PRESENTED}"}
    )
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert response.json["issue"][0]["code"] == "transient"


def test_intake_and_admin_answer_503_json_when_the_database_is_down(down_app, caplog):
    client = down_app.test_client()
    with caplog.at_level(logging.INFO):
        response = client.get("/admin/api/audit-events", headers={"Authorization": f"Bearer {PRESENTED}"})
        intake = client.put("/api/v1/patients/X1", json={}, headers={"Authorization": f"Bearer {PRESENTED}"})
    for answer in (response, intake):
        assert answer.status_code == 503
        assert answer.json["error"]["code"] == "unavailable"
        assert answer.headers["Retry-After"] == "5"
    assert PRESENTED not in caplog.text


def test_a_lock_timeout_on_the_token_table_is_503_and_audited(database_url, db, client):
    """A partial outage (PostgreSQL): the token table is locked past lock_timeout, the audit log works."""
    if not database_url.startswith("postgresql"):
        pytest.skip("needs PostgreSQL's table locks and lock_timeout")
    headers = token(client, db)
    url = make_url(database_url)
    options = url.query["options"] + " -clock_timeout=300"
    impatient = create_app(
        Settings.load(
            environ={},
            database_url=url.update_query_dict({"options": options}).render_as_string(hide_password=False),
            log_level="WARNING",
            db_pool_size=2,
        )
    )
    locker = create_engine(database_url)
    locked, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        with locker.begin() as conn:
            conn.execute(text("LOCK TABLE smart_access_token IN ACCESS EXCLUSIVE MODE"))
            locked.set()
            release.wait(10)

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert locked.wait(5)
        refused = impatient.test_client().get("/fhir/Patient", headers=headers)
    finally:
        release.set()
        holder.join()
        locker.dispose()
    try:
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "5"
        row = audit_rows(db, action="smart.refused")[-1]
        assert (row["outcome"], reason(row)) == (503, "database_unavailable")
        assert impatient.test_client().get("/fhir/Patient", headers=headers).status_code == 200
    finally:
        impatient.extensions["horizon.db"].engine.dispose()
