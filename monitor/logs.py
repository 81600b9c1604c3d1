"""Logging: JSON lines on stdout (Loki reads them) or text for humans (the default at a
terminal)."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

_FIELDS = "fields"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(getattr(record, _FIELDS, {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def flatten(fields: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"targets": {"router": {"avg_ms": 1.2}}} -> {"targets.router.avg_ms": 1.2}, for humans."""
    flat: dict[str, Any] = {}
    for key, value in fields.items():
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def human(fields: Mapping[str, Any]) -> str:
    return " ".join(f"{key}={value}" for key, value in flatten(fields).items())


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = getattr(record, _FIELDS, {})
        if fields:
            text += " " + human(fields)
        return text


def resolve_format(fmt: str, stream: TextIO) -> str:
    """`auto` -> text when `stream` is a terminal, json otherwise; json/text as given."""
    if fmt != "auto":
        return fmt
    isatty = getattr(stream, "isatty", None)
    return "text" if isatty is not None and isatty() else "json"


def setup(level: str = "info", fmt: str = "auto", stream: TextIO | None = None) -> None:
    stream = sys.stdout if stream is None else stream
    handler = logging.StreamHandler(stream)
    fmt = resolve_format(fmt, stream)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("apscheduler", "urllib3", "botocore", "boto3"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def event(logger: logging.Logger, level: int, message: str, **fields: Any) -> None:
    """Log `message` with structured fields (JSON keys, or key=value in text)."""
    logger.log(level, message, extra={_FIELDS: fields})
