"""Bearer tokens guard the intake API; refusals happen before the body is looked at."""

import pytest

from integration.store.tokens import TokenRepository


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer hz_not-a-real-token", "bearer  "],
)
def test_no_or_bad_token_is_401_with_challenge(client, header):
    headers = {"Authorization": header} if header is not None else {}
    # The body is malformed on purpose: a 401 proves it was never parsed.
    response = client.post("/api/v1/batch", data=b"{broken", headers=headers, content_type="application/json")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json["error"]["code"] in {"missing-token", "invalid-token"}


def test_revoked_token_is_refused(client, db):
    with db.writer() as conn:
        token = TokenRepository(conn).create("old", "clinic")
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/patients/p1", headers=headers).status_code == 404
    with db.writer() as conn:
        TokenRepository(conn).revoke("old")
    assert client.get("/api/v1/patients/p1", headers=headers).status_code == 401


def test_admin_token_may_use_intake(client, admin_token):
    response = client.get("/api/v1/patients/p1", headers={"Authorization": f"Bearer {admin_token}"})
    assert response.status_code == 404
