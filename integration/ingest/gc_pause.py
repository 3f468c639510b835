"""The cyclic garbage collector held off while a batch is validated, mapped and stored.

A batch allocates hundreds of thousands of short-lived objects (model instances, dicts, rows), and
each allocation burst triggers collections that walk every young object and then the older
generations: measured at up to a third of model-validation throughput. Nearly all of it is freed
by reference counting anyway. The collector is paused while any batch runs (threads share it, so
a count decides who re-enables it) and always resumed afterwards, error or not. Should batches
overlap without a gap for longer than MAX_PAUSE_SECONDS, a batch that finishes collects once, so
cyclic garbage of the rest of the process cannot pile up under constant intake.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

MAX_PAUSE_SECONDS = 10.0

_lock = threading.Lock()
_active = 0
_resume = False  # whether the collector was on when the first batch paused it
_since = 0.0  # when it was paused, or last collected while paused


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause cyclic collection for the enclosed block; the last block to leave restores it."""
    global _active, _resume, _since
    with _lock:
        if _active == 0:
            _resume = gc.isenabled()
            _since = time.monotonic()
            gc.disable()
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            overdue = _active > 0 and _resume and time.monotonic() - _since > MAX_PAUSE_SECONDS
            if overdue:
                _since = time.monotonic()
            elif _active == 0 and _resume:
                gc.enable()
        if overdue:
            gc.collect()
