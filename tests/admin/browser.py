"""A browser's moves on the admin dashboard through a Flask test client: log in, read CSRF tokens."""

from __future__ import annotations

import re

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    found = _CSRF.search(html)
    assert found, "the page has no form with a csrf_token"
    return found.group(1)


def token_of(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


def login(client, token: str, **extra_headers: str):
    form = client.get("/admin/login")
    assert form.status_code == 200
    return client.post(
        "/admin/login",
        data={"token": token, "csrf_token": csrf_of(form.text)},
        headers=extra_headers or None,
    )


def page_token(client, path: str = "/admin/") -> str:
    """Open a dashboard page and return the CSRF token its forms carry."""
    response = client.get(path)
    assert response.status_code == 200, response.status_code
    return csrf_of(response.text)
