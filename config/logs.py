"""Log plumbing: the current request's id on every record, and a one-line JSON formatter.

Referenced from `LOGGING` in settings, so this module imports nothing from Django.
"""

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime

# Set by config.middleware.RequestIDMiddleware for the duration of a request.
request_id_var: ContextVar[str] = ContextVar("request_id", default="-")

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
# Django attaches the request object to some records; its repr carries the query string.
_NEVER_LOGGED = frozenset({"request"})


class RequestIDFilter(logging.Filter):
    """Stamp each record with the id of the request being served ("-" outside one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


class WarningWithoutTraceback(logging.Filter):
    """Log a record as a one-line WARNING: for errors a client causes at will."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.WARNING:
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info = record.exc_text = None
        return True


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, then the record's extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and key not in _NEVER_LOGGED:
                entry[key] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)
