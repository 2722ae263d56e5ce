"""One JSON object per log line, on stdout.

Every line carries the service name, the level, a short stable event, and the
request id and trace ids of the request being served, so that one request can
be followed across the three services.
"""

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

from servicekit import context

# Attributes every LogRecord has; anything else was passed through `extra=` and
# becomes a field of the JSON line.
_RECORD_ATTRIBUTES = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "taskName", "color_message"}
)


def _current_trace_ids() -> tuple[str | None, str | None]:
    """The active OpenTelemetry span's ids, when OpenTelemetry is installed."""
    try:
        from opentelemetry import trace
    except ImportError:
        return None, None

    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None, None
    return f"{span_context.trace_id:032x}", f"{span_context.span_id:016x}"


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object with the platform's standard fields."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        trace_id, span_id = _current_trace_ids()
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "service": self.service,
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
            "request_id": context.request_id.get(),
            "trace_id": trace_id,
            "span_id": span_id,
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES and key not in line:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def configure_logging(service: str, level: str = "INFO") -> None:
    """Send every logger's records to stdout as JSON lines, replacing any handler."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))

    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())

    # uvicorn installs its own handlers; ours already write every line, and the
    # access log is written by the request middleware with the route template.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True

    # aiosqlite logs every statement with its parameters at DEBUG: password
    # hashes, hashed tokens, what people typed into a login form. Never that.
    logging.getLogger("aiosqlite").setLevel(logging.WARNING)
