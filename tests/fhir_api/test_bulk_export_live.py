"""A real HTTP client on 127.0.0.1 does the whole Bulk Data cycle: token, kick-off, poll, download."""

import dataclasses
import time

import requests

from integration.auth.smart import token_url
from integration.fhir_api.export_runner import runner
from integration.ingest import synthetic
from tests.auth.test_smart_support import assertion, form, register
from tests.fhir_api.test_bulk_export import load


def test_kickoff_poll_and_download_over_real_http(app, db, ctx, live_server, tmp_path):
    # The service names its URLs from public_base_url: here, the server this test started.
    settings = dataclasses.replace(
        app.config["HORIZON_SETTINGS"], public_base_url=live_server, export_dir=str(tmp_path / "exports")
    )
    app.config["HORIZON_SETTINGS"] = settings
    try:
        load(db, ctx, synthetic.batch(seed=4, n_patients=3, sessions_per_patient=1))
        client_id = register(db, name="live-ehr")
        signed = assertion(client_id, aud=token_url(settings))
        issued = requests.post(f"{live_server}/auth/token", data=form(signed), timeout=10)
        assert issued.status_code == 200, issued.text
        headers = {"Authorization": f"Bearer {issued.json()['access_token']}"}
        with requests.Session() as http:
            http.headers.update(headers)
            kickoff = http.get(
                f"{live_server}/fhir/Patient/$export",
                params={"_type": "Patient,Observation"},
                headers={"Prefer": "respond-async", "Accept": "application/fhir+json"},
                timeout=10,
            )
            assert kickoff.status_code == 202, kickoff.text
            status_url = kickoff.headers["Content-Location"]
            assert status_url.startswith(f"{live_server}/fhir/bulk/")
            deadline = time.monotonic() + 30
            while True:
                polled = http.get(status_url, timeout=10)
                if polled.status_code != 202 or time.monotonic() > deadline:
                    break
                time.sleep(min(float(polled.headers["Retry-After"]), 0.2))
            assert polled.status_code == 200, polled.text
            manifest = polled.json()
            assert manifest["request"] == kickoff.request.url  # the kick-off as sent
            counts = {}
            for entry in manifest["output"]:
                with http.get(entry["url"], stream=True, timeout=10) as download:
                    assert download.status_code == 200
                    assert download.headers["Content-Type"].startswith("application/fhir+ndjson")
                    lines = [line for line in download.iter_lines() if line]
                assert len(lines) == entry["count"]
                counts[entry["type"]] = counts.get(entry["type"], 0) + len(lines)
                assert requests.get(entry["url"], timeout=10).status_code == 401
            assert counts["Patient"] == 3 and counts["Observation"] > 3
            assert http.delete(status_url, timeout=10).status_code == 202
            assert http.get(status_url, timeout=10).status_code == 404
    finally:
        runner(app).shutdown()
