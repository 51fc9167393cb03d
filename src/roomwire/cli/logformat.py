"""`--log-format json`: one JSON object per log line, with roomwire's context fields where known.

roomwire's log calls pass `extra={"room": ..., "player": ..., "ref": ...}` where they know them;
the `ref` of an internal error is the id a player is shown ("internal error (ref 3f9c...)"), so
`jq 'select(.ref == "3f9c...")'` finds the traceback. Fields: docs/operations.md.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

# Context fields roomwire sets through `extra=`; copied to the JSON object when a record has them.
_format = "text"  # what setup_logging chose

CONTEXT_FIELDS = ("room", "room_type", "player", "version", "ref", "seq", "worker", "gateway", "code")


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON: ts, level, logger, msg, context fields, exc."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON object on one line."""
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                out[name] = value if isinstance(value, str | int | float | bool) else str(value)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc"] = record.exc_text
        return json.dumps(out, ensure_ascii=False)


def setup_logging(level: str, fmt: str = "text") -> None:
    """Configure the root logger: text for people, json for log pipelines."""
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    global _format
    _format = fmt


def adopt_uvicorn_loggers() -> None:
    """With JSON logs, send uvicorn's own lines through the root handler too (call after
    uvicorn.Config, which installs uvicorn's text handlers)."""
    if _format != "json":
        return
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True


__all__ = ["CONTEXT_FIELDS", "JsonFormatter", "adopt_uvicorn_loggers", "setup_logging"]
