"""`/status`: the bot answers with its gateway latency and uptime (ephemeral)."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

from disnake.ext import commands
from disnake.interactions import ApplicationCommandInteraction

from core.i18n import t

if TYPE_CHECKING:
    from worker.bot import WorkerBot


# Defined once, at import (in the zygote), and added to each worker's bot: building a slash
# command (signature and option parsing) in every worker would cost copy-on-write memory.
@commands.slash_command(name="status", description="Bot status / estado do bot")
async def status(inter: ApplicationCommandInteraction) -> None:
    bot: WorkerBot = inter.bot
    latency = bot.latency
    ms = "?" if math.isinf(latency) or math.isnan(latency) else f"{latency * 1000:.0f}"
    uptime = int(time.time() - (bot.ready_at or time.time()))
    await inter.response.send_message(
        t(
            "worker.status.reply",
            inter.locale.value if inter.locale else None,
            latency_ms=ms,
            uptime_s=uptime,
        ),
        ephemeral=True,
    )


def setup(bot: WorkerBot) -> None:
    bot.add_slash_command(status)
