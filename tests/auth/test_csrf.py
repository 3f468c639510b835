"""CSRF tokens derived from the session, and the Origin/Referer rule."""

from __future__ import annotations

import pytest
from flask import Flask, request

from integration.auth import csrf

BASE = "https://admin.clinic.example"


def test_the_token_is_bound_to_its_secret():
    token = csrf.token_for("session-a")
    assert token == csrf.token_for("session-a") and token != csrf.token_for("session-b")
    assert "session-a" not in token and len(token) == 43
    assert csrf.token_matches("session-a", token)
    assert not csrf.token_matches("session-b", token)
    assert not csrf.token_matches("session-a", "")
    assert not csrf.token_matches("session-a", token[:-1])
    assert not csrf.token_matches("session-a", "é" * 43)  # non-ASCII input is refused, not an error


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        ({}, True),
        ({"Origin": BASE}, True),
        ({"Origin": "HTTPS://Admin.Clinic.Example"}, True),
        ({"Origin": "http://internal:8000"}, True),  # the host the request was sent to
        ({"Origin": "https://internal:8000"}, False),  # same host, other scheme
        ({"Origin": "https://evil.example"}, False),
        ({"Origin": "null"}, False),
        ({"Origin": f"{BASE}.evil.example"}, False),
        ({"Referer": f"{BASE}/admin/"}, True),
        ({"Referer": "https://evil.example/admin/"}, False),
        ({"Referer": "not a url"}, False),
        ({"Origin": BASE, "Referer": "https://evil.example/"}, True),  # Origin decides when present
    ],
)
def test_same_origin(headers, allowed):
    app = Flask(__name__)
    with app.test_request_context(
        "/admin/x", method="POST", base_url="http://internal:8000", headers=headers
    ):
        assert csrf.same_origin(request, BASE) is allowed


def test_presented_prefers_the_header():
    app = Flask(__name__)
    with app.test_request_context(
        "/", method="POST", data={"csrf_token": "form"}, headers={"X-CSRF-Token": "hdr"}
    ):
        assert csrf.presented(request) == "hdr"
    with app.test_request_context("/", method="POST", data={"csrf_token": "form"}):
        assert csrf.presented(request) == "form"
    with app.test_request_context("/", method="POST", json={"csrf_token": "json"}):
        assert csrf.presented(request) == ""
