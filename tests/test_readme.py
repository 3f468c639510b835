"""The README's promises: its curl example is accepted, its settings table is complete."""

import re
from dataclasses import fields
from pathlib import Path

import orjson

from integration.settings import Settings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_curl_example_is_accepted(client, clinic_headers):
    body = re.search(r"-d '(\{.*?\})'\n", README, re.S).group(1)
    response = client.post(
        "/api/v1/batch", data=body, headers=clinic_headers, content_type="application/json"
    )
    assert response.status_code == 200
    summary = response.json["summary"]
    assert summary == {
        "accepted": len([r for v in orjson.loads(body).values() for r in v]),
        "unchanged": 0,
        "rejected": 0,
    }


def test_settings_table_names_every_setting():
    for f in fields(Settings):
        assert f"| `{f.name}` | `{f.metadata['env']}` |" in README
