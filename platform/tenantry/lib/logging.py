"""One log stream: our structlog lines and every library's standard-library lines (alembic,
granian, uvicorn, asyncio) through the same processors; JSON in production, console in dev."""

from __future__ import annotations

import logging
import logging.config
import sys
from collections.abc import Mapping, MutableMapping
from contextvars import ContextVar
from typing import Any

import structlog

_STDLIB_HANDLER = "tenantry"
# Libraries whose INFO lines narrate their own plumbing (pgserver's command lines, aiosmtpd's
# every connection): their warnings and errors still show.
_CHATTY_LOGGERS = ("pgserver", "mail.log")


# The request's log context: one dict per request, in one ContextVar, that every line of the
# request carries. (structlog's contextvars keep a ContextVar per key and copy the whole context
# to read them back: a few percent of a short request.)
_request_context: ContextVar[dict[str, Any] | None] = ContextVar("request_log", default=None)


def start_request_context(**values: Any) -> None:
    """A request's context, replacing whatever the task held (the request's outermost layer)."""
    _request_context.set(values)


def bind_request_context(**values: Any) -> None:
    """Adds to the request's context, for its later lines (and its access line)."""
    context = _request_context.get()
    if context is not None:
        context.update(values)


def request_context() -> Mapping[str, Any]:
    return _request_context.get() or {}


def _merge_request_context(
    _: Any, __: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key, value in request_context().items():
        event.setdefault(key, value)
    return event


def _renderer(*, json: bool) -> structlog.typing.Processor:
    return (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )


_SHARED_PROCESSORS: list[structlog.typing.Processor] = [
    _merge_request_context,
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
