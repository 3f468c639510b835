"""`_sort` paging: ties broken by id, and pages that neither repeat nor skip while matches are updated."""

import base64
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from sqlalchemy import select

from integration.store.resources import ResourceRepository, ResourceWrite
from integration.store.schema import fhir_resource
from tests.fhir_api.search_support import ids, link, relative, token

PATIENT = "sort-patient"
WHEN = "2026-03-01T10:00:00Z"


def _observation(n: int, when: str) -> dict:
    return {
        "resourceType": "Observation",
        "id": f"obs-{n:03d}",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": f"Patient/{PATIENT}"},
        "effectiveDateTime": when,
    }


def _write(db, resources: list[dict], now: datetime) -> None:
    """New versions written straight to the store (index and history with them), all stamped `now`."""
    t = fhir_resource.c
    with db.writer() as conn:
        versions = {
            r.id: r.version_id
            for r in conn.execute(select(t.id, t.version_id).where(t.resource_type == "Observation"))
        }
        ResourceRepository(conn).write(
            [
                ResourceWrite(
                    "Observation",
                    r["id"],
                    versions.get(r["id"], 0) + 1,
                    f"h{now.timestamp()}",
                    orjson.dumps(r).decode(),
                    PATIENT,
                )
                for r in resources
            ],
            now=now,
        )


@pytest.fixture
def tied(db):
    """30 Observations with one date, one lastUpdated: every sort key ties, only the id decides."""
    _write(db, [_observation(n, WHEN) for n in range(30)], datetime.now(UTC) - timedelta(minutes=5))
    return [f"obs-{n:03d}" for n in range(30)]


def _page(client, headers, path):
    response = client.get(path, headers=headers)
    assert response.status_code == 200, response.json
    nxt = link(response.json, "next")
    return ids(response.json), relative(nxt) if nxt else None


@pytest.mark.parametrize("sort", ["date", "-date", "_lastUpdated", "-_lastUpdated", "date,-_lastUpdated"])
def test_ties_are_broken_by_id(client, db, tied, sort):
    headers = token(client, db)
    seen, path = [], f"/fhir/Observation?patient={PATIENT}&_sort={sort}&_count=4"
    while path:
        page, path = _page(client, headers, path)
        seen += page
    assert seen == tied  # every key ties, so the id orders them, ascending


@pytest.mark.parametrize("sort", ["date", "-date", "_lastUpdated", "-_lastUpdated"])
def test_updates_while_paging_neither_repeat_nor_skip(client, db, tied, sort):
    headers = token(client, db)
    first, path = _page(client, headers, f"/fhir/Observation?patient={PATIENT}&_sort={sort}&_count=6")
    assert len(first) == 6 and path
    rest = [i for i in tied if i not in first]
    # Move resources across the cursor both ways: an already-sent one to the far end of the order,
    # and not-yet-sent ones to before the cursor (date sorts: the date moves; every sort: lastUpdated).
    later, earlier = "2027-01-01T00:00:00Z", "2020-01-01T00:00:00Z"
    sent = _observation(int(first[2][4:]), later if sort == "date" else earlier)
    pending = [_observation(int(i[4:]), earlier if sort == "date" else later) for i in (rest[3], rest[-1])]
    _write(db, [sent, *pending], datetime.now(UTC))
    _write(db, [_observation(99, WHEN)], datetime.now(UTC))  # created after the first page
    seen = list(first)
    while path:
        page, path = _page(client, headers, path)
        seen += page
        if len(seen) == 18:  # and again between later pages
            _write(
                db,
                [_observation(int(rest[-2][4:]), later), _observation(int(first[0][4:]), earlier)],
                datetime.now(UTC),
            )
    assert len(seen) == len(set(seen)), "a resource came twice"
    assert set(tied) <= set(seen), f"skipped: {sorted(set(tied) - set(seen))}"
    assert "obs-099" not in seen  # created after the first page: not part of this paging


def test_a_changed_match_that_no_longer_matches_is_left_out(client, db, tied):
    headers = token(client, db)
    first, path = _page(
        client, headers, f"/fhir/Observation?patient={PATIENT}&date=lt2026-06-01&_sort=date&_count=6"
    )
    gone = _observation(int(tied[-1][4:]), "2026-07-01T00:00:00Z")  # now outside date=lt2026-06-01
    _write(db, [gone], datetime.now(UTC))
    seen = list(first)
    while path:
        page, path = _page(client, headers, path)
        seen += page
    assert seen == tied[:-1]


def test_too_many_changes_since_the_first_page_ask_for_a_new_search(client, db, tied, monkeypatch):
    from integration.fhir_api import search_snapshot

    monkeypatch.setattr(search_snapshot, "MAX_MOVED", 3)
    headers = token(client, db)
    _, path = _page(client, headers, f"/fhir/Observation?patient={PATIENT}&_sort=-_lastUpdated&_count=6")
    _write(db, [_observation(int(i[4:]), "2020-01-01T00:00:00Z") for i in tied[10:14]], datetime.now(UTC))
    response = client.get(path, headers=headers)
    assert response.status_code == 400
    assert "start the search again" in response.json["issue"][0]["diagnostics"]


@pytest.mark.parametrize(
    "cursor",
    [
        {"at": "yesterday", "keys": ["2026-03-01T10:00:00+00:00", "obs-001"]},
        {"at": "2026-03-01T10:00:00", "keys": ["2026-03-01T10:00:00+00:00", "obs-001"]},  # no zone
        {"at": "2026-03-01T10:00:00+00:00", "keys": ["2026-03-01T10:00:00+00:00"]},  # a key short
        {"at": "2026-03-01T10:00:00+00:00", "keys": ["2026-03-01T10:00:00+00:00", "obs-001"], "x": 1},
    ],
)
def test_a_tampered_snapshot_cursor_is_400(client, db, tied, cursor):
    value = base64.urlsafe_b64encode(orjson.dumps(cursor)).decode().rstrip("=")
    response = client.get(
        f"/fhir/Observation?patient={PATIENT}&_sort=date&_cursor={value}", headers=token(client, db)
    )
    assert response.status_code == 400, response.json
