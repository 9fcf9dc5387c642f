"""A tenant bot serves only its store's guild: the records of what the worker found
(servers it left, whether the application is public), read by the seller's dashboard."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.transactions import in_transaction

from fleet import fencing
from fleet.alerting import alert_key, raise_alert
from fleet.fencing import Fence
from fleet.models import Alert, AlertKind, BotInstance

log = logging.getLogger("fleet.guildscope")

RECENT_DAYS = 30
RECENT_LIMIT = 5
GUILD_NAME_MAX = 100


async def record_foreign_guild(
    instance_id: int,
    tenant_id: int,
    guild_id: str,
    guild_name: str,
    member_count: int | None,
    *,
    left: bool = True,
    fence: Fence | None = None,
) -> Alert:
    """One `foreign_guild` alert: the bot was in a server that is not its store's and left
    it (`left` false: leaving failed; the bot still refuses everything there). Operators see
    it with the other alerts; the seller on the dashboard."""
    name = (guild_name or "?")[:GUILD_NAME_MAX]
    what = "it left" if left else "leaving failed"
    log.warning(
        "instance %s was in foreign guild %s (%s): %s",
        instance_id,
        guild_id,
        name,
        what,
        extra={"instance_id": instance_id, "event": "foreign_guild"},
    )
    async with in_transaction() as conn:
        await fencing.check(conn, fence)
        alert, _opened = await raise_alert(  # one open alert per bot and guild
            AlertKind.FOREIGN_GUILD,
            key=alert_key(AlertKind.FOREIGN_GUILD, f"instance:{instance_id}:{guild_id}"),
            instance_id=instance_id,
            tenant_id=tenant_id,
            message=f"instance {instance_id} was in guild {guild_id} ({name}), not its store's: "
            f"{what}",
            details={
                "guild_id": str(guild_id),
                "guild_name": name,
                "member_count": member_count,
                "left": left,
            },
            using_db=conn,
        )
        return alert


async def recent_foreign_guilds(tenant_id: int) -> list[dict[str, Any]]:
    """The servers this store's bot left lately (newest first), for the dashboard."""
    since = datetime.now(UTC) - timedelta(days=RECENT_DAYS)
    rows = (
        await Alert.filter(tenant_id=tenant_id, kind=AlertKind.FOREIGN_GUILD, created_at__gte=since)
        .order_by("-id")
        .limit(RECENT_LIMIT)
    )
    out = []
    for alert in rows:
        details = alert.details or {}
        out.append(
            {
                "at": alert.created_at,
                "guild_id": details.get("guild_id", "?"),
                "guild_name": details.get("guild_name", "?"),
                "left": details.get("left", True),
            }
        )
    return out


async def record_bot_public(instance_id: int, public: bool, fence: Fence | None = None) -> None:
    """Discord's `bot_public` as just read (onboarding reads it itself); `fence`: the worker's
    token (`fleet.fencing`)."""
    async with in_transaction() as conn:
        await fencing.check(conn, fence)
        await BotInstance.filter(id=instance_id).using_db(conn).update(bot_public=public)
