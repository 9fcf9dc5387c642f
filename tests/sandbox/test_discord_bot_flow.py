"""A real disnake bot process against the sandbox: online, commands, clicks, DMs, RESUME."""

from __future__ import annotations

import pytest

from sandbox.discord.client import DiscordSandbox

pytestmark = pytest.mark.e2e


async def _online(dc: DiscordSandbox, spawn_bot, *, zlib: bool = True):
    bot = await dc.create_bot("Loja")
    guild = await dc.create_guild("Servidor", channels=["loja"], roles=["VIP"], bots=[bot])
    buyer = await dc.buyer("ana", guilds=[guild])
    proc = await spawn_bot(bot, zlib=zlib)
    await proc.wait_line("READY")
    await dc.wait_commands(bot, ["ping", "comprar", "cupom", "dm", "anunciar", "cargo"])
    return bot, guild, buyer, proc


@pytest.mark.parametrize("zlib", [True, False], ids=["zlib-stream", "plain-json"])
async def test_bot_online_commands_click_dm_and_resume(dc, spawn_bot, zlib):
    bot, guild, buyer, proc = await _online(dc, spawn_bot, zlib=zlib)

    info = await dc.bot_info(bot)
    assert info["open_connections"] == 1
    assert info["identify_count"] == 1
    assert info["login_count"] == 1
    commands = await dc.commands(bot)
    assert all(c["id"].isdigit() for c in commands)

    reply = await (await buyer.slash(bot, guild, "loja", "ping")).wait_reply()
    assert (reply.kind, reply.content, reply.ephemeral) == ("message", "pong", True)

    result = await buyer.slash(
        bot, guild, "loja", "comprar", {"produto": "Netflix"}, locale="pt-BR"
    )
    offer = await result.wait_reply()
    assert offer.content == "Produto: Netflix" and not offer.ephemeral
    assert offer.message.embeds[0]["title"] == "Netflix"
    assert "buy:Netflix" in offer.message.custom_ids()

    clicked = await (await buyer.click(offer.message, "buy:Netflix")).wait_reply()
    assert clicked.kind == "update"
    assert clicked.content == "Pedido de Netflix criado"
    assert clicked.message.components == []

    dm = await buyer.wait_dm(lambda m: m.attachments)
    assert dm.content == "Obrigado! Sua chave de Netflix"
    assert dm.attachments[0]["filename"] == "chave.txt"
    assert await dc.fetch_attachment(dm.attachments[0]) == b"KEY-Netflix-123"

    assert await dc.disconnect(bot, 4000, resume_delay_ms=300) == 1
    # Sent while the bot is reconnecting (RESUME held 300 ms): buffered, replayed on RESUME.
    after = await buyer.slash(bot, guild, "loja", "ping")
    assert (await after.wait_reply(timeout=10)).content == "pong"
    await proc.wait_line("RESUMED")
    info = await dc.wait_bot(bot, lambda b: b["open_connections"] == 1 and b["resume_count"])
    assert info["resume_count"] == 1
    assert info["identify_count"] == 1
    assert info["last_close_code"] == 4000
    assert info["replayed_events"] >= 1
    again = await buyer.slash(bot, guild, "loja", "ping")
    assert (await again.wait_reply()).content == "pong"


async def test_select_modal_deferred_and_role(dc, spawn_bot):
    bot, guild, buyer, _ = await _online(dc, spawn_bot)

    offer = await (
        await buyer.slash(bot, guild, "loja", "comprar", {"produto": "Spotify", "quantidade": 2})
    ).wait_reply()
    assert offer.message.embeds[0]["description"] == "Quantidade: 2"
    picked = await (await buyer.select(offer.message, "qty", ["3"])).wait_reply()
    assert (picked.content, picked.ephemeral) == ("Quantidade: 3", True)

    opened = await buyer.slash(bot, guild, "loja", "cupom")
    modal = await opened.wait_modal()
    assert modal["custom_id"] == "cupom_modal"
    submitted = await (await buyer.submit_modal(opened, {"codigo": "BLACKFRIDAY"})).wait_reply()
    assert submitted.content == "Cupom BLACKFRIDAY aplicado"

    granted = await (
        await buyer.slash(bot, guild, "loja", "cargo", {"role": guild.role("VIP")})
    ).wait_reply()
    assert granted.content == "Cargo VIP entregue"
    assert await buyer.role_names(guild) == ["VIP"]

    in_dm = await (await buyer.slash_dm(bot, "ping")).wait_reply()
    assert in_dm.content == "pong"
    assert in_dm.message.channel_id != guild.channel("loja")


async def test_resume_rejected_after_4009_forces_new_identify(dc, spawn_bot):
    bot, guild, buyer, proc = await _online(dc, spawn_bot)
    await dc.disconnect(bot, 4009)
    info = await dc.wait_bot(bot, lambda b: b["identify_count"] == 2 and b["open_connections"])
    assert info["invalid_sessions"] >= 1
    assert info["resume_count"] == 0
    reply = await (await buyer.slash(bot, guild, "loja", "ping")).wait_reply(timeout=10)
    assert reply.content == "pong"
