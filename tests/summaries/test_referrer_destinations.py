"""Referrer tables at app start: parsed into referrers and sync Destinations, bad ones stop the app naming
destination and field; webhook signers read the secret and the clock when called."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from integration.app import create_app
from integration.jobs import jobs_for
from integration.settings import Settings
from integration.summaries.referrer_destinations import (
    WEBHOOK_SIGNER,
    destination_for,
    missing_secret,
    signers_for,
)
from integration.summaries.referrers import ReferrerConfigError, parse_referrer
from integration.summaries.webhook_signing import verify
from integration.sync.destinations import DestinationConfigError

ROOT = Path(__file__).resolve().parents[2]
GOOD = """
[[destination]]
name = "dr-ref"
kind = "referrer"
practitioner = "prac-0003"
channel = "{channel}"
url = "{url}"
triggers = ["session-completed"]
{extra}
"""


def app_with(tmp_path: Path, toml: str):
    path = tmp_path / "destinations.toml"
    path.write_text(toml)
    return create_app(Settings.load(environ={}, destinations_file=str(path), database_url="sqlite://"))


def test_committed_examples_are_valid_and_disabled():
    app = create_app(
        Settings.load(
            environ={}, destinations_file=str(ROOT / "config" / "destinations.toml"), database_url="sqlite://"
        )
    )
    referrers = app.extensions["horizon.referrers"]
    assert set(referrers) == {"example-referrer", "example-referrer-webhook"}
    assert not any(r.enabled for r in referrers.values())
    destinations = app.extensions["horizon.destinations"]
    fhir = destinations["example-referrer"]
    assert (fhir.kind, fhir.origin, fhir.auth.type, fhir.delivers) == (
        "referrer",
        "https://fhir.example-referrer.org",
        "bearer",
        False,
    )
    assert destinations["example-referrer-webhook"].base_url.endswith("/horizon/summaries")
    assert "summary-delivery" in {s.id for s in jobs_for(app)}


@pytest.mark.parametrize(
    ("channel", "url", "extra", "error", "message"),
    [
        ("mail", "https://r.example.org", "", ReferrerConfigError, "destination 'dr-ref': field 'channel'"),
        ("fhir", "http://r.example.org/fhir", "", ReferrerConfigError, "field 'url': plain http only"),
        (
            "fhir",
            "https://r.example.org/fhir?x=1",
            "",
            ReferrerConfigError,
            "destination 'dr-ref', field 'url'",
        ),
        ("webhook", "https://r.example.org/h", "", ReferrerConfigError, "field 'secret_env'"),
        (
            "fhir",
            "https://r.example.org/fhir",
            '[destination.auth]\ntype = "basic"',
            DestinationConfigError,
            "destination 'dr-ref', field 'auth.type'",
        ),
        (
            "fhir",
            "https://r.example.org/fhir",
            '[destination.auth]\ntype = "bearer"\ntoken = "abc"',
            DestinationConfigError,
            "field 'auth.token': is not allowed here (secrets come from the environment only)",
        ),
    ],
)
def test_a_bad_referrer_stops_the_app_naming_destination_and_field(
    tmp_path, channel, url, extra, error, message
):
    with pytest.raises(error, match=message.replace("?", r"\?").replace("(", r"\(").replace(")", r"\)")):
        app_with(tmp_path, GOOD.format(channel=channel, url=url, extra=extra))


def test_a_fhir_referrer_without_auth_sends_none_and_keeps_its_base():
    table = tomllib.loads(GOOD.format(channel="fhir", url="https://r.example.org/fhir/", extra=""))
    (entry,) = table["destination"]
    d = destination_for(parse_referrer(entry), entry, "d.toml")
    assert (d.base_url, d.auth.type, d.write_mode) == ("https://r.example.org/fhir", "none", "individual")


def test_webhook_signer_reads_secret_and_clock_at_call_time():
    table = tomllib.loads(
        GOOD.format(channel="webhook", url="https://r.example.org/h", extra='secret_env = "HOOK_SECRET"')
    )
    referrer = parse_referrer(table["destination"][0])
    environ: dict[str, str] = {}
    sign = signers_for(referrer, environ)[WEBHOOK_SIGNER]
    assert (
        missing_secret(referrer, environ)
        == "environment variable HOOK_SECRET (the webhook secret) is not set"
    )
    with pytest.raises(ValueError, match="HOOK_SECRET"):
        sign(b"{}")
    environ["HOOK_SECRET"] = "rotated-in"
    headers = sign(b'{"a": 1}')
    assert missing_secret(referrer, environ) is None
    assert verify("rotated-in", headers, b'{"a": 1}', float(headers["X-Horizon-Timestamp"])) > 0
    fhir = tomllib.loads(GOOD.format(channel="fhir", url="https://r.example.org/f", extra=""))
    assert signers_for(parse_referrer(fhir["destination"][0]), environ) == {}  # nothing to sign
