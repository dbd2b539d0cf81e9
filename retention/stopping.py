"""A request to stop, honoured between batches: a batch is never abandoned half done.

The scheduler's SIGTERM handler (or anything else) calls :func:`request_stop`; a running
enforcement checks :func:`stop_requested` after each committed batch and ends the run there,
signing its checkpoint as usual. The policies it did not reach are reported as interrupted.
"""

from __future__ import annotations

import threading

_STOP = threading.Event()


def request_stop() -> None:
    _STOP.set()


def stop_requested() -> bool:
    return _STOP.is_set()


def clear() -> None:
    """Forget an earlier request (a new scheduler, a test)."""
    _STOP.clear()
