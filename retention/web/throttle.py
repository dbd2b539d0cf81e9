"""Failed local sign-ins slow a password guesser down to a few tries a quarter of an hour,
without letting anyone who knows an account's name keep its owner out.

An account's password is all that stands between a guesser and the power to approve the
destruction of records, and argon2 only makes each guess cost the server time, not the
guesser. So after :data:`MOST_FAILURES` failed sign-ins under one account name from one
source (an IPv4 address, or an IPv6 /64: one machine's share of addresses) within
:data:`WINDOW_SECONDS`, further attempts under that name from that source are refused without
checking the password until the oldest failure leaves the window (OWASP's throttling, not a
lock that needs an administrator). The account's owner, signing in from elsewhere, is not
refused for someone else's failures. A name with :data:`MOST_FAILURES_PER_NAME` failures from
all sources together (ten sources' worth: a guesser spread over many addresses) is refused
everywhere — except from a browser the name signed in from before, which carries a signed
device cookie (retention/web/auth.py) and is a source of its own, not ``capped``, so that cap
does not keep the owner out either (OWASP's device cookies). Names are counted in
letter-case-folded form, as accounts are unique in it. The source is the address waitress
reports: the client's behind a proxy only with ``retention serve --trusted-proxy``, otherwise
every attempt comes from the proxy and the per-source limit is per name. The counts live in
the serving process: several replicas each allow their own few tries.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable

#: Failed sign-ins one name may have from one source within the window before that source
#: is refused under it.
MOST_FAILURES = 5
#: Failed sign-ins one name may have from all sources within the window before every source
#: is refused under it.
MOST_FAILURES_PER_NAME = 10 * MOST_FAILURES
#: The window failures are counted in, in seconds.
WINDOW_SECONDS = 15 * 60
#: Names (and names from a source) remembered at most, the oldest forgotten first: a flood of
#: made-up names costs bounded memory.
MOST_NAMES = 10_000


def source_of(address: str | None) -> str:
    """Whom failures are counted against: an IPv4 address, an IPv6 address's /64 (one host
    may hold all of it), or the text as given when it is no address."""
    if not address:
        return "unknown"
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if parsed.version == 6 and parsed.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed.ipv4_mapped or parsed) if parsed.version == 6 else str(parsed)


class Throttle:
    """Failed sign-ins per account name and source, and per name, in the last
    :data:`WINDOW_SECONDS`."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._failures: dict[Hashable, deque[float]] = {}
        self._lock = threading.Lock()

    def wait(self, name: str, source: str = "unknown", *, capped: bool = True) -> int:
        """Seconds until ``name`` may try again from ``source``; 0 if it may now. Not
        ``capped``: the name's failures from everywhere do not refuse this source (a browser
        the name signed in from before)."""
        now = self._clock()
        key = name.casefold()
        limits: list[tuple[Hashable, int]] = [((key, source), MOST_FAILURES)]
        if capped:
            limits.append((key, MOST_FAILURES_PER_NAME))
        with self._lock:
            waits = [
                math.ceil(failures[0] + WINDOW_SECONDS - now)
                for counted, most in limits
                if (failures := self._recent(counted, now)) is not None and len(failures) >= most
            ]  # fmt: skip
        return max(1, *waits) if waits else 0

    def failed(self, name: str, source: str = "unknown") -> None:
        key, now = name.casefold(), self._clock()
        with self._lock:
            for counted, most in (((key, source), MOST_FAILURES), (key, MOST_FAILURES_PER_NAME)):
                failures = self._recent(counted, now)
                if failures is None:
                    if len(self._failures) >= 2 * MOST_NAMES:
                        self._forget_one()
                    failures = self._failures[counted] = deque(maxlen=most)
                failures.append(now)

    def succeeded(self, name: str, source: str = "unknown") -> None:
        """Forget the failures from ``source``; those under the name from everywhere stay until
        they leave the window (a guesser's count is not reset by its owner signing in)."""
        with self._lock:
            self._failures.pop((name.casefold(), source), None)

    def _forget_one(self) -> None:
        """Make room: forget the oldest count still under its limit, so a flood of made-up
        names cannot wash out the counts that are refusing someone; only when every count is
        at its limit, the oldest of all."""
        under = (k for k, failures in self._failures.items()
                 if len(failures) < (failures.maxlen or 0))  # fmt: skip
        del self._failures[next(under, next(iter(self._failures)))]

    def _recent(self, key: Hashable, now: float) -> deque[float] | None:
        failures = self._failures.get(key)
        if failures is None:
            return None
        while failures and failures[0] <= now - WINDOW_SECONDS:
            failures.popleft()
        if not failures:
            del self._failures[key]
            return None
        return failures
