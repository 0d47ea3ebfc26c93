"""Ctrl-C and SIGTERM that cannot be lost.

Python turns SIGINT into a KeyboardInterrupt raised wherever the main thread happens to be. When
that is inside a garbage-collector callback or a ``__del__`` method (Dask's client installs such a
callback), the interpreter prints "Exception ignored" and carries on: the run would go to its end
and exit 0 as if no one had pressed Ctrl-C. So the command line installs :func:`handling`, whose
handler also records the request, and the executors call :func:`check` where they wait, which
raises it again. Without the handler installed (library use), :func:`check` does nothing.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

_REQUESTED = threading.Event()


def _handler(signum: int, frame: FrameType | None) -> None:
    _REQUESTED.set()
    raise KeyboardInterrupt


def requested() -> bool:
    """Whether an interruption was requested inside :func:`handling` (caught or swallowed)."""
    return _REQUESTED.is_set()


def check() -> None:
    """Raise KeyboardInterrupt if an interruption was requested, even one swallowed on the way."""
    if _REQUESTED.is_set():
        raise KeyboardInterrupt


@contextlib.contextmanager
def handling() -> Iterator[None]:
    """SIGINT and SIGTERM raise KeyboardInterrupt and are remembered until the block ends
    (SIGTERM, as CI timeouts and ``kill`` send, ends a run as Ctrl-C does)."""
    _REQUESTED.clear()
    previous = {sig: signal.signal(sig, _handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        _REQUESTED.clear()
