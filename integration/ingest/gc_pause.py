"""The cyclic garbage collector held off while a batch is validated, mapped and stored.

A batch allocates hundreds of thousands of short-lived objects (model instances, dicts, rows), and
each allocation burst triggers collections that walk every young object and then the older
generations: measured at up to a third of model-validation throughput. Nearly all of it is freed
by reference counting anyway. The collector is paused while any batch runs (threads share it, so
a count decides who re-enables it) and always resumed afterwards, error or not.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_active = 0
_resume = False  # whether the collector was on when the first batch paused it


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause cyclic collection for the enclosed block; the last block to leave restores it."""
    global _active, _resume
    with _lock:
        if _active == 0:
            _resume = gc.isenabled()
            gc.disable()
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0 and _resume:
                gc.enable()
