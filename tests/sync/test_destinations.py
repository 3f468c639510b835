"""Destination config: the committed example loads, every error names destination and field."""

import copy
from pathlib import Path

import pytest

from integration.sync.destinations import DestinationConfigError, load, parse, parse_auth, referrer_tables

ROOT = Path(__file__).resolve().parent.parent.parent
GOOD = {
    "name": "north",
    "kind": "ehr",
    "base_url": "https://ehr.example.org/fhir/",
    "auth": {
        "type": "smart-backend",
        "client_id": "c1",
        "token_url": "https://ehr.example.org/token",
        "scope": "system/*.write",
        "alg": "ES384",
    },
    "schedule": {"cron": "*/5 * * * *"},
}


def _one(**changes):
    entry = copy.deepcopy(GOOD)
    for key, value in changes.items():
        if value is None:
            entry.pop(key)
        else:
            entry[key] = value
    return parse({"destination": [entry]}, "d.toml")


def test_committed_example_is_valid_and_disabled():
    (example,) = load(ROOT / "config" / "destinations.toml")
    assert example.kind == "ehr" and not example.enabled and example.headers["Epic-Client-ID"]


def test_defaults_and_normalisation():
    (d,) = _one()
    assert d.base_url == "https://ehr.example.org/fhir" and d.origin == "https://ehr.example.org"
    assert d.write_mode == "auto" and d.patients == "all" and d.batch_size == 100 and d.delivers
    assert d.schedule.trigger() == (
        "cron",
        {"minute": "*/5", "hour": "*", "day": "*", "month": "*", "day_of_week": "*"},
    )
    referrer = {
        "name": "dr-ruiz",
        "kind": "referrer",
        "practitioner": "dr-7",
        "channel": "webhook",
        "url": "https://ruiz.example.org/hooks",
        "triggers": ["session-completed"],
    }
    data = {"destination": [GOOD, referrer]}
    assert [x.name for x in parse(data)] == ["north"]  # referrers are not this engine's to deliver
    assert referrer_tables(data) == [referrer]  # handed over as written to the referrer feature


def test_missing_file_means_no_destinations(tmp_path):
    assert load(tmp_path / "absent.toml") == []


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": None}, "destination '#1', field 'name': is required"),
        ({"kind": None}, "destination 'north', field 'kind': must be one of"),
        ({"kind": "pharmacy"}, "field 'kind': must be one of ehr, referrer"),
        ({"base_url": "http://ehr.example.org/fhir"}, "field 'base_url'.*loopback"),
        ({"base_url": "https://u:p@ehr.example.org/"}, "field 'base_url'.*credentials"),
        ({"base_url": "ftp://x"}, "field 'base_url'"),
        ({"auth": {"type": "bearer", "token": "abc"}}, "field 'auth.token'.*environment"),
        ({"auth": {"type": "bearer"}}, "field 'auth.token_env': is required"),
        ({"auth": {"type": "bearer", "token_env": "lower"}}, "auth.token_env"),
        ({"auth": {**GOOD["auth"], "alg": "HS256"}}, "auth.alg"),
        ({"auth": {**GOOD["auth"], "token_url": "http://evil.example/t"}}, "auth.token_url"),
        ({"auth": {**GOOD["auth"], "private_key_file": "/nope.pem"}}, "auth.private_key_file"),
        ({"auth": {"type": "oauth"}}, "auth.type"),
        ({"schedule": {}}, "field 'schedule': give exactly one"),
        ({"schedule": {"cron": "every day"}}, "schedule.cron"),
        ({"schedule": {"every_seconds": 1}}, "schedule.every_seconds"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": True}, "batch_size"),
        ({"write_mode": "stream"}, "write_mode"),
        ({"patients": "some"}, "patients"),
        ({"headers": {"Authorization": "x"}}, "headers.Authorization"),
        ({"headers": {"X-A": "a\r\nb"}}, "headers.X-A"),
        ({"retry": {"max_attempts": 0}}, "retry.max_attempts"),
        ({"retry": {"base_seconds": 10, "max_seconds": 1}}, "retry.max_seconds"),
        ({"breaker": {"failure_threshold": 0}}, "breaker.failure_threshold"),
        ({"timeouts": {"read_seconds": -1}}, "timeouts.read_seconds"),
        ({"colour": "red"}, "field 'colour': is not a destination field"),
        ({"resource_types": ["patient"]}, "resource_types"),
    ],
)
def test_errors_name_destination_and_field(changes, message):
    with pytest.raises(DestinationConfigError, match=message):
        _one(**changes)


def test_duplicates_and_bad_toml(tmp_path):
    with pytest.raises(DestinationConfigError, match="declared twice"):
        parse({"destination": [GOOD, GOOD]})
    with pytest.raises(DestinationConfigError, match="declared twice"):
        parse({"destination": [GOOD, {"name": "north", "kind": "referrer"}]})
    bad = tmp_path / "d.toml"
    bad.write_text("[[destination]\n")
    with pytest.raises(DestinationConfigError, match="not valid TOML"):
        load(bad)


def test_loopback_http_is_allowed():
    (d,) = _one(base_url="http://127.0.0.1:8080/fhir", auth={"type": "none"})
    assert d.base_url == "http://127.0.0.1:8080/fhir"


def test_parse_auth_serves_other_destination_kinds():
    auth = parse_auth({"auth": {"type": "bearer", "token_env": "RUIZ_TOKEN"}}, "destination 'dr-ruiz'")
    assert auth.type == "bearer" and auth.token_env == "RUIZ_TOKEN"
    with pytest.raises(DestinationConfigError, match=r"destination 'dr-ruiz', field 'auth\.type'"):
        parse_auth({"auth": {"type": "magic"}}, "destination 'dr-ruiz'")


def test_pull_table_defaults_and_schedule():
    (d,) = _one(
        pull={
            "referrals": True,
            "demographics": True,
            "clinic_references": ["Organization/clinic-7"],
            "clinic_identifiers": ["http://hl7.org/fhir/sid/us-npi|1234567893"],
            "schedule": {"every_seconds": 600},
        }
    )
    assert d.pulls and d.pull.resource_types == ("Patient", "ServiceRequest")
    assert d.pull.overlap_seconds == 300 and d.pull.page_size == 100
    assert d.pull.clinic_identifiers == (("http://hl7.org/fhir/sid/us-npi", "1234567893"),)
    assert d.pull.schedule.trigger() == ("interval", {"seconds": 600})
    (none,) = _one()
    assert none.pull is None and not none.pulls


@pytest.mark.parametrize(
    ("pull", "field"),
    [
        ({"referrals": True}, "pull.referrals"),
        ({"referrals": "yes"}, "pull.referrals"),
        ({"demographics": True, "overlap_seconds": -1}, "pull.overlap_seconds"),
        ({"demographics": True, "page_size": 0}, "pull.page_size"),
        ({"referrals": True, "clinic_references": ["https://x/Organization/1"]}, "pull.clinic_references"),
        ({"referrals": True, "clinic_identifiers": ["no-bar"]}, "pull.clinic_identifiers"),
        ({"demographics": True, "schedule": {"every_seconds": 1}}, "pull.schedule.every_seconds"),
        ({"demographics": True, "schedule": {"hourly": True}}, "pull.schedule.hourly"),
        ({"demographics": True, "since": "x"}, "pull.since"),
    ],
)
def test_pull_table_errors_name_destination_and_field(pull, field):
    with pytest.raises(DestinationConfigError, match=f"destination 'north', field '{field}'"):
        _one(pull=pull)
