from datetime import UTC, datetime, timedelta

from integration.store.leases import LeaseRepository

T0 = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)


def test_one_holder_until_expiry(db):
    with db.writer() as conn:
        leases = LeaseRepository(conn)
        assert leases.acquire("leader", "a", 30, now=T0)
        assert not leases.acquire("leader", "b", 30, now=T0 + timedelta(seconds=10))
        assert leases.acquire("leader", "a", 30, now=T0 + timedelta(seconds=20))  # renewal
        assert not leases.acquire("leader", "b", 30, now=T0 + timedelta(seconds=49))
        assert leases.acquire("leader", "b", 30, now=T0 + timedelta(seconds=51))  # a's lease ran out
        assert leases.holder("leader", now=T0 + timedelta(seconds=52)) == "b"
        leases.release("leader", "a")  # not the holder: no effect
        assert leases.holder("leader", now=T0 + timedelta(seconds=52)) == "b"
        leases.release("leader", "b")
        assert leases.holder("leader", now=T0 + timedelta(seconds=52)) is None
