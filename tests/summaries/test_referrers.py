"""Parsing the kind=referrer destination tables: every rule names the destination and the field."""

from __future__ import annotations

import pytest

from integration.summaries.referrers import ReferrerConfigError, parse_referrer, parse_referrers

BASE = {
    "name": "dr-ruiz",
    "kind": "referrer",
    "practitioner": "prac-0003",
    "channel": "webhook",
    "url": "https://ruiz.example.org/hooks",
    "secret_env": "RUIZ_SECRET",
    "triggers": ["session-completed", "weekly-digest"],
    "digest_schedule": "0 7 * * mon",
}


def test_a_full_table():
    r = parse_referrer(BASE)
    assert (r.name, r.channel, r.enabled, r.secret_env) == ("dr-ruiz", "webhook", True, "RUIZ_SECRET")
    assert r.wants("weekly-digest") and not r.wants("safety-signal")
    assert not parse_referrer({**BASE, "enabled": False}).wants("session-completed")


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        ({"url": "http://ruiz.example.org/hooks"}, "url", "loopback"),
        ({"url": "ftp://ruiz.example.org"}, "url", "https"),
        ({"url": "https://user:pw@ruiz.example.org"}, "url", "credentials"),
        ({"channel": "email"}, "channel", "fhir, webhook"),
        ({"secret_env": None}, "secret_env", "NAME of the env var"),
        ({"secret_env": "lower-case"}, "secret_env", "NAME of the env var"),
        ({"triggers": []}, "triggers", "non-empty"),
        ({"triggers": ["daily"]}, "triggers", "unknown trigger 'daily'"),
        ({"digest_schedule": None}, "digest_schedule", "required"),
        ({"digest_schedule": "every monday"}, "digest_schedule", "cron"),
        ({"practitioner": ""}, "practitioner", "required"),
        ({"enabled": "yes"}, "enabled", "true or false"),
        ({"colour": "blue"}, "colour", "unknown key"),
        ({"kind": "ehr"}, "kind", "referrer"),
        ({"auth": {"type": "bearer"}}, "auth", "fhir channel"),
    ],
)
def test_each_rule(change, field, rule):
    table = {k: v for k, v in {**BASE, **change}.items() if v is not None}
    with pytest.raises(ReferrerConfigError) as exc:
        parse_referrer(table)
    assert f"destination 'dr-ruiz': field {field!r}" in str(exc.value)
    assert rule in str(exc.value)


def test_loopback_http_fhir_channel_and_other_kinds():
    table = {**BASE, "channel": "fhir", "url": "http://127.0.0.1:8080/fhir", "auth": {"type": "none"}}
    del table["secret_env"]
    (r,) = parse_referrers([{"name": "hospital", "kind": "ehr"}, table])
    assert r.channel == "fhir" and r.url.startswith("http://127.0.0.1")
    with pytest.raises(ReferrerConfigError, match="secret_env"):
        parse_referrer({**table, "secret_env": "X"})
    with pytest.raises(ReferrerConfigError, match="used twice"):
        parse_referrers([BASE, BASE])
    with pytest.raises(ReferrerConfigError, match="'name' is required"):
        parse_referrer({**BASE, "name": ""})
