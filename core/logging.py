"""JSON-lines logging per service with rotation, and redaction of anything secret."""

from __future__ import annotations

import json
import logging
import logging.handlers
import re
import sys
import time
from collections.abc import Iterable
from pathlib import Path

# Discord bot tokens, bearer/bot authorization values, Fernet tokens, MP access tokens.
_PATTERNS = [
    re.compile(r"[MNO][A-Za-z\d_-]{20,30}\.[A-Za-z\d_-]{5,8}\.[A-Za-z\d_-]{25,45}"),
    re.compile(r"(?i)\b(bot|bearer)\s+[A-Za-z0-9._~+/=-]{12,}"),
    re.compile(r"gAAAAA[A-Za-z0-9_=-]{40,}"),
    re.compile(r"\b(APP_USR|TEST)-[A-Za-z0-9-]{20,}"),
]
_secrets: set[str] = set()


def register_secret(*values: str) -> None:
    """Values that must never appear in a log line (e.g. a decrypted bot token)."""
    _secrets.update(v for v in values if v and len(v) >= 8)


def redact(text: str) -> str:
    for value in _secrets:
        if value in text:
            text = text.replace(value, "[redacted]")
    for pattern in _PATTERNS:
        text = pattern.sub("[redacted]", text)
    return text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, service, logger, msg, extra fields, exc."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        data = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in ("instance_id", "tenant_id", "order_id", "event"):
            if hasattr(record, key):
                data[key] = getattr(record, key)
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return redact(json.dumps(data, ensure_ascii=False, default=str))


def setup_logging(
    service: str,
    log_dir: Path,
    level: str = "INFO",
    stderr: bool = True,
    filename: str | None = None,
    quiet: Iterable[str] = ("tortoise", "aiosqlite", "asyncio", "hpack"),
) -> None:
    """Route the root logger to `log_dir/<service>.log` (rotated) and optionally stderr."""
    log_dir.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    formatter = JsonFormatter(service)
    file_handler = logging.handlers.RotatingFileHandler(
        log_dir / (filename or f"{service}.log"),
        maxBytes=10 * 1024 * 1024,
        backupCount=5,
        encoding="utf-8",
    )
    file_handler.setFormatter(formatter)
    root.addHandler(file_handler)
    if stderr:
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(formatter)
        root.addHandler(stream)
    root.setLevel(level)
    for name in quiet:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
