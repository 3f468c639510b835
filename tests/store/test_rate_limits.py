"""Database hit counters: atomic under concurrent writers, fixed windows, old windows deleted."""

import threading

from sqlalchemy import select

from integration.store.rate_limits import RateCounters
from integration.store.schema import rate_limit_window

NOW = 1_800_000_000.0  # a multiple of 60: the start of a window


def test_concurrent_hits_are_never_lost(db):
    threads, per_thread, counts = 6, 15, []
    lock = threading.Lock()

    def hammer() -> None:
        for _ in range(per_thread):
            with db.writer() as conn:
                count = RateCounters(conn).hit("bucket", 60, NOW + 5)
            with lock:
                counts.append(count.hits)

    workers = [threading.Thread(target=hammer) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert sorted(counts) == list(range(1, threads * per_thread + 1))  # each hit saw its own count


def test_windows_are_fixed_and_past_ones_are_deleted(db):
    with db.writer() as conn:
        counters = RateCounters(conn)
        assert [counters.hit("a", 60, NOW + s).hits for s in (0, 30, 59.9)] == [1, 2, 3]
        assert counters.hit("b", 60, NOW + 1).hits == 1
        assert counters.peek("a", 60, NOW + 59).window_ends_in == 1
        assert counters.peek("a", 60, NOW + 0.5).window_ends_in == 60
        later = counters.hit("a", 60, NOW + 60)  # the next window starts over
        assert (later.hits, later.window_ends_in) == (1, 60)
        assert counters.peek("b", 60, NOW + 61).hits == 0
        rows = conn.execute(select(rate_limit_window.c.bucket, rate_limit_window.c.window_start)).all()
    assert rows == [("a", int(NOW) + 60)]  # the first hit of a new window cleared the old ones
