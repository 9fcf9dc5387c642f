"""Raising and resolving operational alerts: one open alert per key, its notification owed.

Whoever knows a fact calls `raise_alert` (the orchestrator for crash loops, the worker's
delivery for stock, the reconciler's checks for disks and backups…) and, when the condition
clears, `resolve_alert`. Both only write the `alerts` row, in the caller's transaction when
given one: telling people is `shop.notify`'s job in the reconciler, so a dead SMTP server or
Discord webhook never slows the service that raised the alert.

De-duplication: while an alert is open its key is in the unique `open_key` column, so raising
the same key again (twice a minute, or from two processes at once) bumps `occurrences` on the
one row and owes no second message. The first notification is owed `AGGREGATION_WINDOW_S`
after the raise, so alerts raised together (200 bots failing at once) leave in one message.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from core.tuning import tuning_float, tuning_int
from fleet.models import Alert, AlertKind
from fleet.runtime import LastError

log = logging.getLogger("fleet.alerting")


def aggregation_window() -> timedelta:
    """`ALERT_AGGREGATION_SECONDS` (default 10): how long a raised alert waits for others of
    its kind before the operators' message leaves."""
    return timedelta(seconds=tuning_float("ALERT_AGGREGATION_SECONDS", 10.0, 0.0, 3600.0))


def repeated_error_count() -> int:
    """`ALERT_REPEATED_ERROR_COUNT` (default 5): the same last error this many times in 24 h
    raises `repeated_error`."""
    return tuning_int("ALERT_REPEATED_ERROR_COUNT", 5, 2, 1000)


def alert_key(kind: AlertKind, subject: str | int | None = None) -> str:
    """The de-duplication key: `kind` alone (one platform-wide fact) or `kind:subject`."""
    return str(kind) if subject is None else f"{kind}:{subject}"


async def raise_alert(
    kind: AlertKind,
    message: str,
    *,
    key: str | None = None,
    tenant_id: int | None = None,
    instance_id: int | None = None,
    details: dict[str, Any] | None = None,
    using_db: Any = None,
) -> tuple[Alert, bool]:
    """Open the alert `key` (default: the kind) or count one more occurrence of the open one.

    Returns the alert and True when it was opened now (its notification is then owed)."""
    key = key or alert_key(kind)
    now = datetime.now(UTC)
    bumped = await _bump(key, now, message, details, using_db)
    if bumped is not None:
        return bumped, False
    try:
        # A savepoint inside the caller's transaction, so a lost race rolls back only this
        # (PostgreSQL aborts a whole transaction on an error outside a savepoint).
        ctx = in_transaction() if using_db is None else using_db._in_transaction()
        async with ctx as conn:
            alert = await Alert.create(
                kind=kind,
                key=key,
                open_key=key,
                tenant_id=tenant_id,
                instance_id=instance_id,
                message=message,
                details=details,
                last_seen_at=now,
                notify_at=now + aggregation_window(),
                notified={"raised": [], "resolved": []},
                using_db=conn,
            )
    except IntegrityError:  # raised by another process between our look and our insert
        bumped = await _bump(key, now, message, details, using_db)
        if bumped is None:
            raise
        return bumped, False
    log.info("alert %s raised: %s", key, message, extra={"event": "alert_raised"})
    return alert, True


async def _bump(
    key: str, now: datetime, message: str, details: dict[str, Any] | None, using_db: Any
) -> Alert | None:
    query = Alert.filter(open_key=key)
    if using_db is not None:
        query = query.using_db(using_db)
    changed = await query.update(
        occurrences=F("occurrences") + 1, last_seen_at=now, message=message
    )
    if not changed:
        return None
    query = Alert.filter(open_key=key)
    if using_db is not None:
        query = query.using_db(using_db)
    alert = await query.first()
    if alert is not None and details is not None:
        alert.details = details
        await alert.save(update_fields=["details"], using_db=using_db)
    return alert


async def resolve_alert(key: str, *, using_db: Any = None) -> bool:
    """Resolve the open alert `key`, if any; its "resolved" message is owed. True if one was."""
    now = datetime.now(UTC)
    query = Alert.filter(open_key=key)
    if using_db is not None:
        query = query.using_db(using_db)
    # Resolutions wait for their kind's aggregation window too (200 bots back at once).
    # notify_claim cleared: a dispatcher holding the row must not overwrite notify_at.
    done = await query.update(
        open_key=None, resolved_at=now, notify_at=now + aggregation_window(), notify_claim=None
    )
    if done:
        log.info("alert %s resolved", key, extra={"event": "alert_resolved"})
    return bool(done)


async def resolve_many(keys: Iterable[str]) -> int:
    """Resolve every open alert among `keys`; returns how many."""
    resolved = 0
    for key in keys:
        resolved += await resolve_alert(key)
    return resolved


async def open_alerts(kinds: Iterable[AlertKind]) -> list[Alert]:
    """The open (unresolved) alerts of these kinds, oldest first."""
    return await Alert.filter(open_key__isnull=False, kind__in=list(kinds)).order_by("id")


def repeated_error(history: list[LastError], now: float, count: int) -> LastError | None:
    """The newest error when it was recorded at least `count` times in the last 24 h."""
    if not history:
        return None
    newest = max(history, key=lambda e: e.at)
    same = [e for e in history if e.message == newest.message and e.at >= now - 86_400]
    return newest if len(same) >= count else None
