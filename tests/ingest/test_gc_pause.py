"""The collector is off while a batch runs and always back on afterwards, across threads and errors."""

import gc
import threading
import time

import pytest

from integration.ingest import gc_pause
from integration.ingest.gc_pause import gc_paused


@pytest.fixture(autouse=True)
def _collector_on():
    gc.enable()
    yield
    gc.enable()


def test_paused_inside_and_resumed_after():
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_resumed_after_an_error():
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_left_off_when_it_was_off_before():
    gc.disable()
    with gc_paused():
        pass
    assert not gc.isenabled()


def test_overlapping_batches_resume_only_when_the_last_leaves():
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen: list[bool] = []

    def first() -> None:
        with gc_paused():
            first_in.set()
            second_in.wait(5)
        first_out.set()

    def second() -> None:
        first_in.wait(5)
        with gc_paused():
            second_in.set()
            first_out.wait(5)
            seen.append(gc.isenabled())  # the first batch has left, this one still runs

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen == [False]
    assert gc.isenabled()


def test_batches_overlapping_for_too_long_still_collect(monkeypatch):
    collections: list[int] = []
    monkeypatch.setattr(gc_pause, "MAX_PAUSE_SECONDS", 0.0)
    monkeypatch.setattr(gc_pause.gc, "collect", lambda *args: collections.append(1) or 0)
    with gc_paused():
        with gc_paused():
            time.sleep(0.01)
        assert collections == [1]  # the inner batch left while the outer one still runs
        assert not gc.isenabled()
    assert collections == [1] and gc.isenabled()


def test_short_overlaps_do_not_collect(monkeypatch):
    collections: list[int] = []
    monkeypatch.setattr(gc_pause.gc, "collect", lambda *args: collections.append(1) or 0)
    with gc_paused(), gc_paused():
        pass
    assert collections == []
