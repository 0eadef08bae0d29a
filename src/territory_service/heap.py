"""The process's garbage collector around long-lived and bulk work.

Bulk passes over the pool allocate millions of short-lived acyclic objects; the cyclic
collector finds none of them garbage yet walks the live ones again and again. Two measures keep
it out of the way: the start-up heap is frozen once, and passes pause it while they run.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


def settle_heap() -> None:
    """Exempt what is alive now (modules, the app, its routes and schemas: it lives as long as
    the process) from the cyclic garbage collector. Otherwise every full collection walks it
    again; in a bulk run over the pool those walks cost more than a third of the time."""
    gc.collect()
    gc.freeze()


_pauses = 0  # passes that hold the collector paused


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a pass over the pool runs (passes may overlap).

    The collector would find nothing of a pass's garbage (rows, decisions, changes), yet walks
    the ones alive: a quarter of a re-division's time. Reference counting still frees them as
    they go; cycles made meanwhile elsewhere in the process are collected once the last pass
    ends."""
    global _pauses
    if _pauses == 0 and not gc.isenabled():  # paused by someone else: theirs to resume
        yield
        return
    _pauses += 1
    gc.disable()
    try:
        yield
    finally:
        _pauses -= 1
        if _pauses == 0:
            gc.enable()
