"""A buyer rejoined the store's server: their active accesses owe their roles again.

Discord drops a member's roles when they leave, and a rejoin starts with none
(https://discord.com/developers/docs/topics/gateway-events#guild-member-add). With the Server
Members intent the worker hears GUILD_MEMBER_ADD and calls `member_rejoined`, which marks
the buyer's ACTIVE grants in that store as owing their roles (`roles_applied_at` NULL) and
due now (`shop.access.due_now`); the store's access runner then adds them within seconds.
Without the intent the periodic check (`VITRINE_ACCESS_RECHECK_S`) does the same later.
"""

from __future__ import annotations

from datetime import UTC, datetime

from shop.access import due_now
from shop.models import AccessGrant, AccessStatus


async def member_rejoined(
    tenant_id: int, guild_id: str, buyer_discord_id: str, *, now: datetime | None = None
) -> int:
    """Make the buyer's ACTIVE grants of this store and guild due now, roles owed; returns
    how many (0: nothing to restore, the worker need not wake)."""
    if not (guild_id.isdigit() and buyer_discord_id.isdigit()):
        return 0
    when = now or datetime.now(UTC)
    return await AccessGrant.filter(
        tenant_id=tenant_id,
        guild_id=guild_id,
        buyer_discord_id=buyer_discord_id,
        status=AccessStatus.ACTIVE,
    ).update(roles_applied_at=None, **due_now(when))
