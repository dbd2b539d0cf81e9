"""Failed local sign-ins slow a password guesser down to a few tries a quarter of an hour.

An account's password is all that stands between a guesser and the power to approve the
destruction of records, and argon2 only makes each guess cost the server time, not the
guesser. So after :data:`MOST_FAILURES` failed sign-ins under one account name within
:data:`WINDOW_SECONDS`, further attempts under that name are refused without checking the
password until the oldest failure leaves the window (OWASP's throttling, not a lock that
needs an administrator). Names are counted in letter-case-folded form, as accounts are
unique in it. The count lives in the serving process: several replicas each allow their
own few tries.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

#: Failed sign-ins one name may have within the window before it is refused.
MOST_FAILURES = 5
#: The window failures are counted in, in seconds.
WINDOW_SECONDS = 15 * 60
#: Names remembered at most (the oldest are forgotten first): a flood of made-up names
#: costs bounded memory.
MOST_NAMES = 10_000


class Throttle:
    """Failed sign-ins per account name, in the last :data:`WINDOW_SECONDS`."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def wait(self, name: str) -> int:
        """Seconds until ``name`` may try again; 0 if it may now."""
        now = self._clock()
        with self._lock:
            failures = self._recent(name.casefold(), now)
            if failures is None or len(failures) < MOST_FAILURES:
                return 0
            return max(1, math.ceil(failures[0] + WINDOW_SECONDS - now))

    def failed(self, name: str) -> None:
        key, now = name.casefold(), self._clock()
        with self._lock:
            failures = self._recent(key, now)
            if failures is None:
                if len(self._failures) >= MOST_NAMES:
                    del self._failures[next(iter(self._failures))]
                failures = self._failures[key] = deque(maxlen=MOST_FAILURES)
            failures.append(now)

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._failures.pop(name.casefold(), None)

    def _recent(self, key: str, now: float) -> deque[float] | None:
        failures = self._failures.get(key)
        if failures is None:
            return None
        while failures and failures[0] <= now - WINDOW_SECONDS:
            failures.popleft()
        if not failures:
            del self._failures[key]
            return None
        return failures
