"""A deliberately buggy storefront extension for the tests: `/block` blocks the event loop
(a synchronous call in a coroutine), the failure the stuck-worker detection exists for."""

from __future__ import annotations

import time

import disnake


def setup(bot) -> None:  # type: ignore[no-untyped-def]
    @bot.slash_command(name="block", description="block the event loop (test only)")
    async def block(inter: disnake.ApplicationCommandInteraction) -> None:
        time.sleep(3600)  # noqa: ASYNC251 - the bug under test
