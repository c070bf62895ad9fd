"""Structured logging: one `key=value` line per event on stderr.

Call `log_event(logger, "event_name", key=value, ...)`; values are quoted
when they hold spaces. Secrets never reach here: callers pass names, not
credentials.
"""

from __future__ import annotations

__all__ = ["configure_logging", "log_event"]

import logging
import sys
import time
from typing import Any


class _KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        ms = int(record.msecs)
        return f"ts={ts}.{ms:03d}Z level={record.levelname.lower()} logger={record.name} {record.getMessage()}"


def configure_logging(level: str = "info") -> None:
    """Send `agent.*` logs to stderr as key=value lines (idempotent)."""
    root = logging.getLogger("agent")
    root.setLevel(level.upper())
    if not any(getattr(h, "_edge_agent", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_KeyValueFormatter())
        handler._edge_agent = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.propagate = False


def _quote(value: Any) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' "=\n'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one event as `event=NAME k=v ...` (cheap when the level is off)."""
    if logger.isEnabledFor(level):
        parts = [f"event={event}"] + [f"{k}={_quote(v)}" for k, v in fields.items()]
        logger.log(level, " ".join(parts))
