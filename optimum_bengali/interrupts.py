"""Ctrl-C and SIGTERM end a run cleanly, also while native code runs.

The command line turns both signals into ``KeyboardInterrupt`` (:func:`handle_signals`), so that the staging
folders are removed and the previous output stays. An exception raised while OpenVINO's converter or NNCF is
inside C++ that called back into Python cannot unwind that C++: the process aborts (SIGTERM) or the interrupt is
swallowed and the run goes on (SIGINT). Inside :func:`deferred`, a signal is only recorded, and the
``KeyboardInterrupt`` is raised when the block ends.
"""

from __future__ import annotations

import signal
import sys
import threading
from contextlib import contextmanager
from typing import Any, Dict, Iterator, Optional

_depth = 0
_pending: Optional[int] = None


def _handler(signum: int, frame: Any) -> None:
    global _pending
    if _depth:
        if _pending is None:
            print("interrupt received: stopping when the native call returns", file=sys.stderr, flush=True)
        _pending = signum
        return
    raise KeyboardInterrupt


@contextmanager
def handle_signals() -> Iterator[None]:
    """While inside (main thread only), SIGINT and SIGTERM raise ``KeyboardInterrupt``, held back inside
    :func:`deferred`; the previous handlers are put back afterwards."""
    if threading.current_thread() is not threading.main_thread():  # signals can only be set there
        yield
        return
    previous: Dict[int, Any] = {s: signal.signal(s, _handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@contextmanager
def deferred() -> Iterator[None]:
    """Hold Ctrl-C / SIGTERM back until the block ends, then raise ``KeyboardInterrupt`` (for native calls
    that call back into Python: OpenVINO conversion, NNCF calibration). Without :func:`handle_signals` (the
    Python API) signals keep Python's own behaviour."""
    global _depth, _pending
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if not _depth and _pending is not None:
            _pending = None
            if sys.exc_info()[0] is None:
                raise KeyboardInterrupt
