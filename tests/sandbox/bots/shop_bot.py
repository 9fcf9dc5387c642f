"""A small disnake InteractionBot used by the sandbox tests (runs in its own process).

Environment: DISCORD_API_BASE, BOT_TOKEN, BOT_ZLIB=1|0, BOT_INTENTS=default|<int>.
Prints `READY <bot user id>` once on_ready fires, `RESUMED` on resume, and, if the bot stops
with an exception, `EXC {"type": ..., "code": ..., "msg": ...}` then exits with status 3.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys

import disnake
from disnake.ext import commands

disnake.http.Route.BASE = os.environ["DISCORD_API_BASE"]


def _intents() -> disnake.Intents:
    raw = os.environ.get("BOT_INTENTS", "default")
    return disnake.Intents.default() if raw == "default" else disnake.Intents(int(raw))


def say(*parts: object) -> None:
    print(*parts, flush=True)


def create_bot() -> commands.InteractionBot:
    """Build the bot (inside the running loop: disnake binds the loop at construction)."""
    bot = commands.InteractionBot(
        intents=_intents(),
        gateway_params=disnake.GatewayParams(zlib=os.environ.get("BOT_ZLIB", "1") == "1"),
        guild_ready_timeout=0.1,
    )
    _add_lifecycle(bot)
    _add_shop(bot)
    _add_account(bot)
    return bot


def _add_lifecycle(bot: commands.InteractionBot) -> None:
    @bot.event
    async def on_ready() -> None:
        say("READY", bot.user.id)

    @bot.event
    async def on_resumed() -> None:
        say("RESUMED")

    @bot.slash_command(description="Health check")
    async def ping(inter: disnake.ApplicationCommandInteraction) -> None:
        await inter.response.send_message("pong", ephemeral=True)


def _add_shop(bot: commands.InteractionBot) -> None:
    @bot.slash_command(description="Start a purchase")
    async def comprar(
        inter: disnake.ApplicationCommandInteraction, produto: str, quantidade: int = 1
    ) -> None:
        buttons = disnake.ui.ActionRow(
            disnake.ui.Button(
                label="Pagar", custom_id=f"buy:{produto}", style=disnake.ButtonStyle.success
            )
        )
        select = disnake.ui.ActionRow(
            disnake.ui.StringSelect(
                custom_id="qty",
                options=[disnake.SelectOption(label=str(n), value=str(n)) for n in (1, 2, 3)],
            )
        )
        embed = disnake.Embed(title=produto, description=f"Quantidade: {quantidade}")
        await inter.response.send_message(
            f"Produto: {produto}", embed=embed, components=[buttons, select]
        )

    @bot.listen("on_button_click")
    async def on_buy(inter: disnake.MessageInteraction) -> None:
        if not inter.component.custom_id.startswith("buy:"):
            return
        produto = inter.component.custom_id.split(":", 1)[1]
        await inter.response.edit_message(content=f"Pedido de {produto} criado", components=[])
        file = disnake.File(io.BytesIO(f"KEY-{produto}-123".encode()), filename="chave.txt")
        try:
            await inter.author.send(f"Obrigado! Sua chave de {produto}", file=file)
        except disnake.Forbidden as exc:
            await inter.followup.send(f"Forbidden {exc.status} {exc.code}", ephemeral=True)

    @bot.listen("on_dropdown")
    async def on_qty(inter: disnake.MessageInteraction) -> None:
        await inter.response.send_message(f"Quantidade: {inter.values[0]}", ephemeral=True)

    @bot.slash_command(description="Enter a coupon")
    async def cupom(inter: disnake.ApplicationCommandInteraction) -> None:
        await inter.response.send_modal(
            title="Cupom",
            custom_id="cupom_modal",
            components=[disnake.ui.TextInput(label="Codigo", custom_id="codigo")],
        )

    @bot.listen("on_modal_submit")
    async def on_cupom(inter: disnake.ModalInteraction) -> None:
        await inter.response.send_message(
            f"Cupom {inter.text_values['codigo']} aplicado", ephemeral=True
        )


def _add_account(bot: commands.InteractionBot) -> None:
    @bot.slash_command(description="DM me")
    async def dm(inter: disnake.ApplicationCommandInteraction) -> None:
        await inter.response.defer(ephemeral=True)
        try:
            await inter.author.send("Oi por DM")
        except disnake.Forbidden as exc:
            say("FORBIDDEN", exc.status, exc.code)
            await inter.edit_original_response(f"Forbidden {exc.status} {exc.code}")
            return
        await inter.edit_original_response("DM enviada")

    @bot.slash_command(description="Post in this channel")
    async def anunciar(inter: disnake.ApplicationCommandInteraction, texto: str) -> None:
        await inter.response.defer(ephemeral=True)
        await inter.channel.send(texto)
        await inter.edit_original_response("anunciado")

    @bot.slash_command(description="Grant a role")
    async def cargo(inter: disnake.ApplicationCommandInteraction, role: disnake.Role) -> None:
        await inter.response.defer(ephemeral=True)
        try:
            await inter.author.add_roles(role)
        except disnake.Forbidden as exc:
            await inter.edit_original_response(f"Forbidden {exc.code}")
            return
        await inter.edit_original_response(f"Cargo {role.name} entregue")


async def main() -> int:
    bot = create_bot()
    try:
        await bot.start(os.environ["BOT_TOKEN"])
    except Exception as exc:  # report what disnake raised, as the test asserts on it
        info = {"type": type(exc).__name__, "code": getattr(exc, "code", None), "msg": str(exc)}
        say("EXC", json.dumps(info))
        return 3
    finally:
        if not bot.is_closed():
            await bot.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
