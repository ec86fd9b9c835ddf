"""Logging: one JSON object per line, each tagged with the request it belongs to.

The request id (the client's ``X-Request-ID`` or a fresh one) is bound to a context
variable by the HTTP middleware; ``asyncio.to_thread`` copies the context, so domain
code running in worker threads logs with the right id without knowing about requests.
The same id is returned in the ``X-Request-ID`` header and in GraphQL errors'
``extensions.requestId``, so a client's error report leads straight to the log lines.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

LOG_FORMATS = ("json", "text")
REQUEST_ID: ContextVar[str | None] = ContextVar("casegraph_request_id", default=None)

# Attributes every LogRecord has; anything else was passed with ``extra=`` and is logged.
# (uvicorn's color_message is its message with ANSI colours: not for a log collector.)
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "taskName", "color_message",
}


def bind_request_id(request_id: str) -> None:
    """Tag the log lines of the current request (and the threads it starts)."""
    REQUEST_ID.set(request_id)


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", "requestId"?, ...extra, "exception"?}``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "requestId", None) or REQUEST_ID.get()
        if request_id:
            entry["requestId"] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = REQUEST_ID.get()
        return f"{line} [request {request_id}]" if request_id else line


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Route every logger (uvicorn's too) to one stderr handler in ``fmt``."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(_TextFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # uvicorn's loggers carry their own handlers when it configures logging itself;
    # we start it with log_config=None, and make sure they propagate to ours.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    # Strawberry logs every GraphQL error, expected ones (bad input) included, at ERROR.
    # app/api/errors.py already logs the unexpected ones with their request id.
    logging.getLogger("strawberry.execution").setLevel(logging.CRITICAL)
    logging.captureWarnings(True)
