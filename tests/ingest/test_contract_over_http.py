"""Every contract rule, sent over the intake API: each violating record is rejected naming its rule."""

from collections import defaultdict

import orjson
from sqlalchemy import func, select

from integration.ingest import service
from integration.store.schema import clinic_record
from tests.ingest.validation.records import _batch, apply
from tests.ingest.validation.test_coverage import ALL_CASES


def _count(db):
    with db.reader() as conn:
        return conn.execute(select(func.count()).select_from(clinic_record)).scalar_one()


def test_every_rule_is_answered_by_the_api(client, clinic_headers, db):
    base = _batch()
    stored = client.post(
        "/api/v1/batch", data=orjson.dumps(base), headers=clinic_headers, content_type="application/json"
    )
    assert stored.json["summary"]["rejected"] == 0
    before = _count(db)
    by_kind: dict[str, list[tuple[dict, frozenset]]] = defaultdict(list)
    for param in ALL_CASES:
        kind, change, expected = param.values
        by_kind[kind].append((apply(kind, change), expected))
    collections = {kind: collection for collection, kind in service.COLLECTIONS.items()}
    checked = 0
    for kind, cases in by_kind.items():
        body = {collections[kind]: [record for record, _ in cases]}
        response = client.post(
            "/api/v1/batch", data=orjson.dumps(body), headers=clinic_headers, content_type="application/json"
        )
        assert response.status_code == 200
        for (_record, expected), result in zip(cases, response.json["results"], strict=True):
            assert result["status"] == "rejected", (kind, expected)
            reported = {(e["path"], e["rule"]) for e in result["errors"]}
            assert expected <= reported, (kind, expected, reported)
            assert all(e["kind"] == kind and e["message"] for e in result["errors"])
            checked += 1
    assert checked == len(ALL_CASES)
    assert _count(db) == before
