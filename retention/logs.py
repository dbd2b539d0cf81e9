"""Structured logging: JSON lines when not on a terminal, readable lines when on one.

Every line carries the run id (bound with ``structlog.contextvars`` at the start of a run).
Log calls pass keys, counts and pseudonymous references only, never column values.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO, cast

import structlog


class _StderrNow:
    """Standard error as it is at each write, not as it was when logging was configured.

    A live progress display replaces ``sys.stderr`` with a proxy that prints above its bars;
    a logger holding the original stream would write through the display and make the
    terminal re-print the bars below every log line.
    """

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


def configure(
    stream: TextIO | None = None, *, json: bool | None = None, level: str = "info"
) -> None:
    out = stream if stream is not None else cast("TextIO", _StderrNow())
    as_json = not out.isatty() if json is None else json
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer(sort_keys=False)
        if as_json
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger
