"""Rate limits of the SMART token endpoint: per verified client, per remote address for refusals,
shared by every app process on the database, answered 429 with Retry-After and audited."""

import pytest
from sqlalchemy import func, select

from integration.app import create_app
from integration.settings import Settings
from integration.store.schema import smart_access_token
from tests.auth.test_smart_support import assertion, audit_rows, form, reason, register

# A day-long window: a test never straddles a window boundary (they fall at multiples of it).
WINDOW = 86_400
UNKNOWN_ID = "5f0f4c1e-0000-4000-8000-000000000000"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings.load(
        environ={},
        database_url=database_url,
        log_level="WARNING",
        db_pool_size=4,
        smart_token_rate_window_seconds=WINDOW,
        smart_token_rate_per_client=3,
        smart_token_refusals_per_address=4,
    )


def _post(client, client_id, address="10.1.1.1", **claims):
    return client.post(
        "/auth/token", data=form(assertion(client_id, **claims)), environ_base={"REMOTE_ADDR": address}
    )


def _tokens(db) -> int:
    with db.reader() as conn:
        return conn.execute(select(func.count()).select_from(smart_access_token)).scalar_one()


def _assert_throttled(response):
    assert response.status_code == 429
    assert response.json["error"] == "invalid_request"
    assert "retry after" in response.json["error_description"]
    assert "access_token" not in response.json
    assert 0 < int(response.headers["Retry-After"]) <= WINDOW
    assert response.headers["Cache-Control"] == "no-store"


def test_a_client_beyond_its_limit_gets_429_with_retry_after(client, db):
    busy, other = register(db), register(db, name="other-ehr")
    assert [_post(client, busy, address=f"10.0.0.{i}").status_code for i in range(3)] == [200, 200, 200]
    throttled = _post(client, busy, address="10.0.0.9")  # another address does not help: per client
    _assert_throttled(throttled)
    assert _tokens(db) == 3
    assert _post(client, other).status_code == 200  # other clients are not affected
    row = audit_rows(db)[-2]
    assert (row["outcome"], reason(row), row["actor"]) == (429, "rate_limited_client", busy)


def test_an_address_refused_too_often_is_throttled_before_its_assertion_is_read(client, db):
    client_id = register(db)
    for _ in range(4):
        assert _post(client, UNKNOWN_ID, address="10.6.6.6").status_code == 401
    # Even a valid assertion from that address now waits; from another address it is served.
    throttled = _post(client, client_id, address="10.6.6.6")
    _assert_throttled(throttled)
    row = audit_rows(db)[-1]
    assert (row["outcome"], reason(row), row["actor"]) == (429, "rate_limited_address", None)
    assert _post(client, client_id, address="10.7.7.7").status_code == 200
    # Throttled answers are not refusals that count again, and malformed requests count too.
    other = "10.8.8.8"
    for _ in range(4):
        bad = client.post("/auth/token", data={"grant_type": "password"}, environ_base={"REMOTE_ADDR": other})
        assert bad.status_code == 400
    _assert_throttled(_post(client, client_id, address=other))


def test_the_counts_are_shared_by_every_process_on_the_database(settings, db):
    """Two apps (as two gunicorn workers would be) with their own engines count against one limit."""
    client_id = register(db)
    first, second = create_app(settings), create_app(settings)
    try:
        statuses = [
            _post(app.test_client(), client_id, address=f"10.2.0.{i}").status_code
            for i, app in enumerate([first, second, first, second])
        ]
    finally:
        first.extensions["horizon.db"].engine.dispose()
        second.extensions["horizon.db"].engine.dispose()
    assert statuses == [200, 200, 200, 429]


def test_a_replayed_assertion_is_still_refused_and_counts(client, db):
    client_id = register(db)
    signed = assertion(client_id)
    sent = [
        client.post("/auth/token", data=form(signed), environ_base={"REMOTE_ADDR": "10.3.3.3"})
        for _ in range(4)
    ]
    assert [r.status_code for r in sent] == [200, 401, 401, 429]
    assert [reason(r) for r in audit_rows(db)] == [
        "issued",
        "replayed_jti",
        "replayed_jti",
        "rate_limited_client",
    ]


def test_zero_turns_a_limit_off(database_url):
    settings = Settings.load(
        environ={},
        database_url=database_url,
        log_level="WARNING",
        smart_token_rate_per_client=0,
        smart_token_refusals_per_address=0,
    )
    app = create_app(settings)
    try:
        db = app.extensions["horizon.db"]
        client_id = register(db)
        client = app.test_client()
        assert all(_post(client, UNKNOWN_ID).status_code == 401 for _ in range(30))
        assert all(_post(client, client_id).status_code == 200 for _ in range(40))
    finally:
        app.extensions["horizon.db"].engine.dispose()
