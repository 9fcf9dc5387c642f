"""Database side effects of the crash policy: alerts, automatic suspension, audit entries."""

from __future__ import annotations

import logging
from typing import Any

from core import audit
from fleet.models import Alert, AlertKind, BotInstance

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
    await Alert.create(
        kind=AlertKind.CRASHLOOP,
        instance_id=instance_id,
        tenant_id=tenant_id,
        message=message,
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
    await Alert.create(
        kind=AlertKind.AUTO_SUSPENDED,
        instance_id=instance_id,
        tenant_id=tenant_id,
        message=reason,
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
