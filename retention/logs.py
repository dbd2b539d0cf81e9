"""Structured logging: JSON lines when not on a terminal, readable lines when on one.

Every line carries the run id (bound with ``structlog.contextvars`` at the start of a run).
Log calls pass keys, counts and pseudonymous references only, never column values.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog


def configure(
    stream: TextIO | None = None, *, json: bool | None = None, level: str = "info"
) -> None:
    out = stream if stream is not None else sys.stderr
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
