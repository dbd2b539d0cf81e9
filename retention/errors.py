"""The one exception hierarchy of the engine.

Every error the engine raises on purpose derives from :class:`RetentionError` and carries
the exit code the command line maps it to, so the CLI has exactly one place that turns
failures into exit codes (SPEC §5).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

EXIT_SUCCESS = 0
EXIT_UNEXPECTED = 1
EXIT_INVALID = 2
EXIT_SAFETY_VALVE = 3
EXIT_PARTIAL = 4
EXIT_LOCKED = 5


class RetentionError(Exception):
    """Root of every deliberate engine failure."""

    exit_code = EXIT_UNEXPECTED


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the catalog, located as precisely as the input allows."""

    file: str
    message: str
    line: int | None = None
    policy: str | None = None
    key: str | None = None

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        parts = [where]
        if self.policy:
            parts.append(f"policy {self.policy}")
        if self.key:
            parts.append(f"key {self.key!r}")
        return ": ".join([*parts, self.message])


def did_you_mean(word: object, choices: Iterable[str]) -> str:
    """ "did you mean 'account_closed_on'? " for a near miss among ``choices``, else ""."""
    import difflib

    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in choices}
        close = [lowered[word.lower()]] if word.lower() in lowered else []
    return f"did you mean {close[0]!r}? " if close else ""


class CatalogError(RetentionError):
    """The catalog, the settings or the command's input is invalid; nothing was changed."""

    exit_code = EXIT_INVALID

    def __init__(self, problems: list[Problem] | Problem | str) -> None:
        if isinstance(problems, str):
            problems = [Problem(file="-", message=problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: tuple[Problem, ...] = tuple(problems)
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in the catalog"
        super().__init__("\n".join([head, *(f"  {p}" for p in self.problems)]))


class UsageError(RetentionError):
    """A command was called with arguments that cannot work (unknown policy, bad date...)."""

    exit_code = EXIT_INVALID


class MissingSecret(UsageError):
    """A command that writes was started without ``RETENTION_SECRET``."""


class SafetyValveTripped(RetentionError):
    """A policy found more due records than it may dispose of in one run; it changed nothing."""

    exit_code = EXIT_SAFETY_VALVE

    def __init__(self, policy: str, due: int, limit: int) -> None:
        self.policy, self.due, self.limit = policy, due, limit
        super().__init__(
            f"safety valve: {due} records are due but max_per_run is {limit}; nothing was "
            "changed (review a plan, then raise max_per_run or run with a narrower scope)"
        )


class RunLocked(RetentionError):
    """Another live run holds a lock this run needs; nothing was done. Try again later."""

    exit_code = EXIT_LOCKED

    def __init__(self, name: str, owner: str, since: datetime) -> None:
        self.name, self.owner, self.since = name, owner, since
        super().__init__(
            f"{name} is locked by another run ({owner}, since {since:%Y-%m-%d %H:%M:%S} UTC); "
            "nothing was done: run again when it has finished"
        )


class DueShareTripped(SafetyValveTripped):
    """Too large a share of a policy's records is due at once; nothing was changed."""

    def __init__(self, policy: str, due: int, scanned: int, share: float) -> None:
        self.policy, self.due, self.limit = policy, due, int(share * scanned)
        RetentionError.__init__(
            self,
            f"safety valve: {due} of {scanned} records ({due / scanned:.0%}) are due, more than "
            f"max_due_share {share:.0%}; nothing was changed. A broken trigger column, a wrong "
            "date format or a wrong clock looks like this: check them, review a plan, then "
            "raise max_due_share for this policy if the share is right",
        )


class SourceUnavailable(RetentionError):
    """A source system could not be reached or failed mid-run; transient by nature."""

    exit_code = EXIT_PARTIAL


class LedgerError(RetentionError):
    """The certificate ledger or an export failed verification."""

    exit_code = EXIT_UNEXPECTED
