"""Database side effects of the crash policy: alerts (through `fleet.alerting`, which
de-duplicates them and owes the operators a message), automatic suspension, audit entries."""

from __future__ import annotations

import logging
from typing import Any

from core import audit
from fleet.alerting import alert_key, raise_alert
from fleet.models import AlertKind, BotInstance

log = logging.getLogger("orchestrator.alerts")

SYSTEM_ACTOR = "system:orchestrator"


async def crashloop_alert(
    instance_id: int, tenant_id: int | None, count: int, errors: list[dict[str, Any]]
) -> None:
    """One alert row when an instance enters the crash loop, plus a log line with its errors."""
    message = f"instance {instance_id} crashed {count} times in a short time"
    log.warning(
        "%s; last errors: %s",
        message,
        "; ".join(f"{e.get('code')}: {e.get('error') or '-'}" for e in errors[:5]),
        extra={"instance_id": instance_id, "event": "crashloop"},
    )
    await raise_alert(
        AlertKind.CRASHLOOP,
        message,
        key=alert_key(AlertKind.CRASHLOOP, f"instance:{instance_id}"),
        instance_id=instance_id,
        tenant_id=tenant_id,
        details={"count": count, "last_errors": errors[:10]},
    )


async def auto_suspend(
    instance_id: int, tenant_id: int | None, reason: str, errors: list[dict[str, Any]]
) -> None:
    """Suspend in the database (so it stays down across restarts), alert, audit."""
    await BotInstance.filter(id=instance_id).update(
        suspended=True, suspension_reason=reason, suspended_by=SYSTEM_ACTOR
    )
    log.error(
        "instance %s suspended automatically: %s",
        instance_id,
        reason,
        extra={"instance_id": instance_id, "event": "auto_suspended"},
    )
    await raise_alert(
        AlertKind.AUTO_SUSPENDED,
        reason,
        key=alert_key(AlertKind.AUTO_SUSPENDED, f"instance:{instance_id}"),
        instance_id=instance_id,
        tenant_id=tenant_id,
        details={"last_errors": errors[:10]},
    )
    await audit.record(
        SYSTEM_ACTOR,
        "instance.auto_suspend",
        "bot_instance",
        instance_id,
        tenant_id=tenant_id,
        before={"suspended": False},
        after={"suspended": True, "reason": reason},
    )


async def config_error_alert(
    instance_id: int, tenant_id: int | None, message: str, code: str
) -> None:
    """The bot cannot log in (token invalid: 4004) or lacks an intent (4014): it rests in
    `error` until the seller fixes it; resolved when it comes online (shop.notify.checks)."""
    await raise_alert(
        AlertKind.CONFIG_ERROR,
        message,
        key=alert_key(AlertKind.CONFIG_ERROR, f"instance:{instance_id}"),
        instance_id=instance_id,
        tenant_id=tenant_id,
        details={"code": code, "error": message},
    )


async def repeated_error_alert(
    instance_id: int, tenant_id: int | None, message: str, count: int
) -> None:
    """The same last error `count` times in 24 h (outside a crash loop, which has its own)."""
    await raise_alert(
        AlertKind.REPEATED_ERROR,
        f"instance {instance_id}: the same error {count} times in 24 h: {message}",
        key=alert_key(AlertKind.REPEATED_ERROR, f"instance:{instance_id}"),
        instance_id=instance_id,
        tenant_id=tenant_id,
        details={"error": message, "count": count},
    )
