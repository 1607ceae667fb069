"""Progress as one JSON object per stdout line, so a log pipeline can index it without parsing.

Every line carries the job id once `bind_job` was called; library loggers (the SDK, urllib3) go
through the same formatter, so nothing prints in another shape.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

_LOGGER = logging.getLogger("genvid_worker")
_context: dict[str, Any] = {}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
            **_context,
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def configure(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    _LOGGER.setLevel(level)


def bind_job(job_id: str) -> None:
    _context["job_id"] = job_id


def info(event: str, **fields: Any) -> None:
    _LOGGER.info(event, extra={"fields": fields})


def warning(event: str, **fields: Any) -> None:
    _LOGGER.warning(event, extra={"fields": fields})


def error(event: str, *, exc_info: bool = False, **fields: Any) -> None:
    _LOGGER.error(event, exc_info=exc_info, extra={"fields": fields})
