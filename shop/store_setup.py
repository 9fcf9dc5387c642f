"""Saving what the seller picked for the store's Discord server: the guild, the sales-log,
support and feedback channels and the buyer role. One owner for the write, its audit record
and the bump that makes the store's bots reload their settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tortoise.transactions import in_transaction

from core import audit
from fleet.models import BotInstance
from shop.models import Tenant

CHANNEL_FIELDS = {
    "sales_log": "sales_log_channel_id",
    "support": "support_channel_id",
    "feedback": "feedback_channel_id",
}
DISCORD_FIELDS = ("guild_id", *CHANNEL_FIELDS.values(), "buyer_role_id")


@dataclass(frozen=True)
class DiscordChoices:
    """Ids already checked against what the bot sees (or typed where reading failed)."""

    channels: dict[str, str | None]  # purpose (sales_log, support, feedback) -> channel id
    buyer_role_id: str | None


def current(tenant: Tenant) -> dict[str, str | None]:
    return {f: getattr(tenant, f) for f in DISCORD_FIELDS}


async def choose_guild(tenant: Tenant, guild_id: str, actor: str) -> list[int]:
    """Set the store's server; a new server clears the channels and role picked in the old
    one. Returns the ids of the store's bot instances that must reload."""
    values: dict[str, Any] = {"guild_id": guild_id}
    if tenant.guild_id != guild_id:
        values.update({f: None for f in DISCORD_FIELDS if f != "guild_id"})
    return await _save(tenant, values, actor, "tenant.guild_chosen")


async def choose_channels(tenant: Tenant, choices: DiscordChoices, actor: str) -> list[int]:
    """Set the channels and the buyer role (in the store's current server)."""
    values: dict[str, Any] = {
        field: choices.channels.get(purpose) for purpose, field in CHANNEL_FIELDS.items()
    }
    values["buyer_role_id"] = choices.buyer_role_id
    return await _save(tenant, values, actor, "tenant.discord_channels_chosen")


async def _save(tenant: Tenant, values: dict[str, Any], actor: str, action: str) -> list[int]:
    before = current(tenant)
    if all(before.get(k) == v for k, v in values.items()):
        return []
    async with in_transaction() as conn:
        tenant.update_from_dict(values)
        await tenant.save(using_db=conn, update_fields=[*values, "updated_at"])
        await audit.record(
            actor,
            action,
            "tenant",
            tenant.id,
            tenant_id=tenant.id,
            before=before,
            after=current(tenant),
            using_db=conn,
        )
        # The bot reads these at start: bump its config so the orchestrator restarts it.
        instances = await BotInstance.filter(tenant_id=tenant.id).using_db(conn)
        for instance in instances:
            instance.config_version += 1
            await instance.save(using_db=conn, update_fields=["config_version", "updated_at"])
    return [i.id for i in instances]
