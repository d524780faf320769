"""One log stream: our structlog lines and every library's standard-library lines (alembic,
granian, uvicorn, asyncio) through the same processors; JSON in production, console in dev."""

from __future__ import annotations

import logging
import logging.config
import sys
from typing import Any

import structlog

_STDLIB_HANDLER = "tenantry"
# Libraries whose INFO lines narrate their own plumbing (pgserver's command lines, aiosmtpd's
# every connection): their warnings and errors still show.
_CHATTY_LOGGERS = ("pgserver", "mail.log")


def _renderer(*, json: bool) -> structlog.typing.Processor:
    return (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )


_SHARED_PROCESSORS: list[structlog.typing.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def stdlib_formatter(*, json: bool) -> logging.Formatter:
    """Renders a standard-library record like a structlog line (with its logger's name)."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_SHARED_PROCESSORS, structlog.stdlib.add_logger_name],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _renderer(json=json),
        ],
    )


def level_number(level_name: str) -> int:
    return logging.getLevelNamesMapping().get(level_name.upper(), logging.INFO)


def configure_logging(*, json: bool, level_name: str) -> None:
    level = level_number(level_name)
    structlog.configure(
        processors=[
            *_SHARED_PROCESSORS,
            structlog.processors.format_exc_info,
            _renderer(json=json),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        # One write per line (message and newline together): several worker processes share the
        # stream, and two lines must never interleave into one.
        logger_factory=structlog.WriteLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.config.dictConfig(stdlib_log_config(json=json, level_name=level_name))
    logging.captureWarnings(True)  # a library's warning is a log line too, not raw stderr


def stdlib_log_config(*, json: bool, level_name: str) -> dict[str, Any]:
    """A `logging.config.dictConfig` that sends every library's records through our formatter.

    granian's own loggers are named here because granian applies this same dict in each of its
    processes (its default would print plain text to stdout)."""
    level = logging.getLevelName(level_number(level_name))
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            _STDLIB_HANDLER: {"()": stdlib_formatter, "json": json},
        },
        "handlers": {
            _STDLIB_HANDLER: {
                "class": "logging.StreamHandler",
                "formatter": _STDLIB_HANDLER,
                "stream": "ext://sys.stderr",
            },
        },
        "root": {"handlers": [_STDLIB_HANDLER], "level": level},
        "loggers": {
            **{
                name: {"handlers": [_STDLIB_HANDLER], "level": level, "propagate": False}
                for name in ("_granian", "granian.access", "uvicorn", "uvicorn.error")
            },
            **{name: {"level": "WARNING"} for name in _CHATTY_LOGGERS},
        },
    }
