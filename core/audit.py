"""The audit log: every mutating action, in the database and as JSON lines in logs/audit.jsonl."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

from core.logging import redact
from core.models import AuditLog
from core.tuning import tuning_path

log = logging.getLogger(__name__)
_lock = threading.Lock()


def _audit_file() -> Path:
    return tuning_path("LOG_DIR", "logs") / "audit.jsonl"


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str)) if value is not None else None


async def record(
    actor: str,
    action: str,
    target_type: str,
    target_id: object,
    tenant_id: int | None = None,
    before: Any = None,
    after: Any = None,
    using_db: Any = None,
) -> AuditLog:
    """Write one audit entry (pass `using_db` to join the caller's transaction)."""
    entry = await AuditLog.create(
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        tenant_id=tenant_id,
        before=_jsonable(before),
        after=_jsonable(after),
        using_db=using_db,
    )
    line = json.dumps(
        {
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "id": entry.id,
            "actor": actor,
            "action": action,
            "target_type": target_type,
            "target_id": str(target_id),
            "tenant_id": tenant_id,
            "before": _jsonable(before),
            "after": _jsonable(after),
        },
        ensure_ascii=False,
    )
    try:
        await asyncio.to_thread(_append, _audit_file(), redact(line) + "\n")
    except OSError:  # the DB row is the record of truth; a full disk must not block it
        log.exception("could not append to audit.jsonl")
    return entry


def _append(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with _lock, open(path, "a", encoding="utf-8") as fh:
        fh.write(text)
