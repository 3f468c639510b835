"""Batched key lookups find exactly the stored keys, however many are asked, on both backends."""

from datetime import UTC, datetime

from sqlalchemy import select

from integration.store.keys import CHUNK, chunk_for, grouped_chunks, one_of
from integration.store.resources import ResourceRepository, ResourceWrite
from integration.store.schema import fhir_resource

NOW = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)


def test_grouped_chunks_dedupes_and_splits():
    keys = [("A", str(i)) for i in range(5)] * 2 + [("B", "x")]
    assert list(grouped_chunks(keys, 2)) == [("A", ["0", "1"]), ("A", ["2", "3"]), ("A", ["4"]), ("B", ["x"])]


def test_one_of_matches_in_on_both_backends(db):
    stored = [f"obs-{i}" for i in range(0, 3 * CHUNK, 3)]
    with db.writer() as conn:
        ResourceRepository(conn).write(
            [ResourceWrite("Observation", i, 1, "h", "{}", None) for i in stored], now=NOW
        )
    asked = [f"obs-{i}" for i in range(3 * CHUNK)]  # more than one SQLite chunk
    backend = db.engine.dialect.name
    with db.reader() as conn:
        found = set()
        for _, ids in grouped_chunks((("Observation", i) for i in asked), chunk_for(backend)):
            found |= set(
                conn.execute(
                    select(fhir_resource.c.id).where(one_of(fhir_resource.c.id, ids, backend))
                ).scalars()
            )
        states = ResourceRepository(conn).states(("Observation", i) for i in asked)
    assert found == set(stored)
    assert set(k[1] for k in states) == set(stored)
