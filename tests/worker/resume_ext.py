"""Test extension for the resume tests: records the member joins it handled in a Redis set
(idempotent, as a handler of replayable events must be: a RESUME may replay a few events the
previous process already handled)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import disnake

if TYPE_CHECKING:
    from worker.bot import WorkerBot

INTENTS = ("members",)


def joins_key(instance_id: int) -> str:
    return f"vitrine:test:joins:{instance_id}"


def setup(bot: WorkerBot) -> None:
    async def on_member_join(member: disnake.Member) -> None:
        await bot.ctx.redis.sadd(joins_key(bot.ctx.instance_id), str(member.id))

    bot.add_listener(on_member_join)
