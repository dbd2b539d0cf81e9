"""Batches sized by time: as large as the source lets them be without holding it long.

A fixed count is wrong for most tables: 1,000 rows of a narrow table change in a
millisecond, so a run spends its time in commits, while 1,000 rows of a wide, heavily
indexed table under load may hold their locks for seconds. Online schema-change and
archiving tools (pt-online-schema-change's ``--chunk-time``, gh-ost's and pt-archiver's
chunks) size each chunk from how long the last one took; so does this. The time measured
is the source transaction of a batch — how long its rows stay locked, which is what other
users of the source feel — and the next batch is sized so that it would take the target at
the last batch's rate: it grows at most twofold a batch while batches stay under the
target, shrinks at once, in proportion, when one runs over it (a lock wait, a busy server),
and always stays between 1 and the cap.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from retention.catalog.model import Settings

#: The clock batches are timed by (a test may replace it).
monotonic = time.monotonic


class Pacer:
    """The size of the next batch; told how long each batch's source transaction took.

    Called with no arguments it returns the current size, so a connector reading pages
    asks it afresh before each page."""

    def __init__(
        self,
        start: int,
        target_seconds: float | None,
        most: int,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.most = max(1, most)
        self.size = min(max(1, start), self.most)
        self.target = target_seconds if target_seconds else None
        self.clock = clock if clock is not None else monotonic

    @classmethod
    def for_settings(cls, settings: Settings, clock: Callable[[], float] | None = None) -> Pacer:
        """``batch_size`` is the first batch's size; ``batches`` says how it may change.
        The cap is ``batches.max_size``, or 5,000 or ``batch_size`` if that is larger."""
        return cls(
            settings.batch_size, settings.batches.target_seconds, settings.largest_batch, clock
        )

    def __call__(self) -> int:
        return self.size

    def took(self, rows: int, seconds: float) -> int:
        """Size the next batch from one of ``rows`` whose source transaction took
        ``seconds``; return the new size.

        A batch over the target shrinks the size to what would have met it at the batch's
        rate. One under it grows the size (at most twofold) only when it was full: a short
        batch (the last due records, or a page most of whose records were kept) says
        little about the rate. Without a target the size never changes."""
        if self.target is None or rows <= 0:
            return self.size
        if seconds > self.target:
            wanted = int(rows * self.target / seconds)
        elif rows < self.size:
            return self.size
        elif seconds <= 0:
            wanted = 2 * self.size
        else:
            wanted = int(self.size * min(2.0, self.target / seconds))
        self.size = max(1, min(self.most, wanted))
        return self.size

    def timing(self) -> _Timing:
        """A context that measures a batch on this pacer's clock: ``with pacer.timing() as t``
        then ``pacer.took(rows, t.seconds)``."""
        return _Timing(self.clock)


class _Timing:
    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.start = 0.0
        self.seconds = 0.0

    def __enter__(self) -> _Timing:
        self.start = self.clock()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = self.clock() - self.start
