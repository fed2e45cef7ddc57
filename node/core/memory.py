"""Memory during bulk work."""

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector paused while a batch is loaded, checked or written: the
    batch's tens of thousands of objects live until it is done, and each collection meanwhile
    would walk them (and everything older) again. Reference counting still frees what is
    dropped; cycles wait for the next collection after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
