"""Audit facts as frozen, past-tense events, logged as key/value pairs.

Events carry ids, counts and references — never a column value — so a log shipped to a
central system cannot leak personal data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

from retention.logs import get_logger

_log = get_logger("retention")


@dataclass(frozen=True)
class RunStarted:
    run_id: str
    plan_id: str
    as_of: str
    policies: int


@dataclass(frozen=True)
class IntentsReconciled:
    run_id: str
    certified: int
    dropped: int


@dataclass(frozen=True)
class PolicyStarted:
    policy: str
    candidates: int


@dataclass(frozen=True)
class BatchCommitted:
    policy: str
    records: int
    disposed: int
    unchanged: int


@dataclass(frozen=True)
class PackageSealed:
    policy: str
    package: str
    records: int


@dataclass(frozen=True)
class PolicyFinished:
    policy: str
    status: str
    scanned: int
    expire: int
    retain: int
    held: int
    done: int
    disposed: int
    message: str | None = None


@dataclass(frozen=True)
class CheckpointSigned:
    run_id: str
    last_seq: int
    count: int


@dataclass(frozen=True)
class RunFinished:
    run_id: str
    status: str
    exit_code: int
    disposed: int


Event = (
    RunStarted
    | IntentsReconciled
    | PolicyStarted
    | BatchCommitted
    | PackageSealed
    | PolicyFinished
    | CheckpointSigned
    | RunFinished
)


_listeners: list[Callable[[Event], None]] = []


def subscribe(listener: Callable[[Event], None]) -> Callable[[], None]:
    """Also hand every event to ``listener`` (a progress display); returns the unsubscriber."""
    _listeners.append(listener)
    return lambda: _listeners.remove(listener)


def emit(event: Event) -> None:
    name = type(event).__name__
    fields = asdict(event)
    if isinstance(event, PolicyFinished) and event.status == "failed":
        _log.error(name, **fields)
    elif isinstance(event, PolicyStarted):
        _log.debug(name, **fields)
    else:
        _log.info(name, **fields)
    for listener in list(_listeners):
        listener(event)
