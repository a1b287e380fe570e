"""Log output of the long-running commands: one JSON object per line, or plain text.

JSON is the default when stderr is not a terminal (containers, systemd, log shippers). The
fields a record carries as ``extra`` (target, step, rotation_id, duration, ...) become keys.
Every record is already scrubbed of secrets when it is created (:mod:`rotator.core.redact`).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

# Attributes of a LogRecord that are logging's own, not "extra" fields worth showing.
_STANDARD = set(vars(logging.LogRecord("x", 0, "x", 0, "x", None, None))) | {"message", "asctime", "_scrubbed"}


class JsonFormatter(logging.Formatter):
    """``{"ts": ..., "level": ..., "logger": ..., "message": ..., <extra fields>}`` per line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_") and value is not None:
                out[key] = value if isinstance(value, (str, int, float, bool)) else str(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exception"] = record.exc_text
        return json.dumps(out, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``2026-11-27T22:00:00Z INFO rotator.engine: message key=value ...``"""

    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(f"{k}={v}" for k, v in vars(record).items()
                          if k not in _STANDARD and not k.startswith("_") and v is not None)
        line = (f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(record.created))} {record.levelname} "
                f"{record.name}: {record.getMessage()}{' ' + extras if extras else ''}")
        if record.exc_info or record.exc_text:
            line += "\n" + (record.exc_text or self.formatException(record.exc_info))
        return line


def setup_logging(log_format: str | None = None, *, level: int = logging.INFO, stream: Any = None) -> str:
    """Route the root logger to ``stream`` (stderr) in ``log_format``; returns the format used."""
    stream = stream or sys.stderr
    chosen = log_format or ("text" if getattr(stream, "isatty", lambda: False)() else "json")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if chosen == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # Chatty libraries stay at WARNING unless --debug asked for everything.
    for noisy in ("urllib3", "botocore", "boto3", "apscheduler", "hvac"):
        logging.getLogger(noisy).setLevel(logging.WARNING if level > logging.DEBUG else logging.DEBUG)
    return chosen
