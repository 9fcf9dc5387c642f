"""Injected faults surface in real disnake exactly as Discord's would."""

from __future__ import annotations

import asyncio

import pytest

from sandbox.discord.client import DiscordSandbox

pytestmark = pytest.mark.e2e

ALL_COMMANDS = ["ping", "comprar", "cupom", "dm", "anunciar", "cargo"]


async def _world(dc: DiscordSandbox, **bot_kw):
    bot = await dc.create_bot("Loja", **bot_kw)
    guild = await dc.create_guild("Servidor", channels=["loja"], roles=["VIP"], bots=[bot])
    buyer = await dc.buyer("ana", guilds=[guild])
    return bot, guild, buyer


async def _online(dc, spawn_bot, **bot_kw):
    bot, guild, buyer = await _world(dc, **bot_kw)
    proc = await spawn_bot(bot)
    await proc.wait_line("READY")
    await dc.wait_commands(bot, ALL_COMMANDS)
    return bot, guild, buyer, proc


async def test_http_401_is_login_failure(dc, spawn_bot):
    bot, _, _ = await _world(dc)
    await dc.set_faults(bot, invalid_token=True)
    proc = await spawn_bot(bot)
    exc = await proc.exception()
    assert exc["type"] == "LoginFailure"
    assert exc["msg"] == "Improper token has been passed."
    assert proc.proc.returncode == 3
    info = await dc.bot_info(bot)
    assert info["identify_count"] == 0
    assert [r["status"] for r in await dc.requests(bot, "GET", "/users/@me")] == [401]


async def test_unknown_token_is_login_failure(dc, spawn_bot):
    proc = await spawn_bot("not-a-registered-token")
    assert (await proc.exception())["type"] == "LoginFailure"


async def test_gateway_4004_is_connection_closed(dc, spawn_bot):
    bot, _, _ = await _world(dc)
    await dc.set_faults(bot, gateway_auth_fail=True)
    proc = await spawn_bot(bot)
    exc = await proc.exception()
    assert (exc["type"], exc["code"]) == ("ConnectionClosed", 4004)
    info = await dc.bot_info(bot)
    assert info["last_close_code"] == 4004
    assert info["identify_count"] == 0


async def test_disallowed_intents_4014(dc, spawn_bot):
    bot, _, _ = await _world(dc)  # no privileged intent enabled for this app
    members_intent = (1 << 1) | 53575421
    proc = await spawn_bot(bot, intents=str(members_intent))
    exc = await proc.exception()
    assert exc["type"] == "PrivilegedIntentsRequired"
    assert (await dc.bot_info(bot))["last_close_code"] == 4014


async def test_enabled_privileged_intent_is_accepted(dc, spawn_bot):
    bot, _, _ = await _world(dc, privileged_intents=["members"])
    proc = await spawn_bot(bot, intents=str((1 << 1) | 53575421))
    await proc.wait_line("READY")
    assert (await dc.bot_info(bot))["identify_count"] == 1


async def test_429_is_retried_and_succeeds(dc, spawn_bot):
    bot, guild, buyer, _ = await _online(dc, spawn_bot)
    channel = guild.channel("loja")
    path = f"/channels/{channel}/messages"
    await dc.add_fault_rule(bot, "ratelimit", method="POST", path=path, retry_after=0.3)

    reply = await (
        await buyer.slash(bot, guild, "loja", "anunciar", {"texto": "Promo!"})
    ).wait_reply(timeout=10)
    assert reply.content == "anunciado"
    assert [m.content for m in await dc.channel_messages(channel)] == ["Promo!"]
    statuses = [r["status"] for r in await dc.requests(bot, "POST", path)]
    assert statuses == [429, 200]


async def test_5xx_is_retried_and_succeeds(dc, spawn_bot):
    bot, guild, buyer, _ = await _online(dc, spawn_bot)
    path = f"/channels/{guild.channel('loja')}/messages"
    await dc.add_fault_rule(bot, "error", method="POST", path=path, status=502)
    reply = await (await buyer.slash(bot, guild, "loja", "anunciar", {"texto": "oi"})).wait_reply(
        timeout=10
    )
    assert reply.content == "anunciado"
    assert [r["status"] for r in await dc.requests(bot, "POST", path)] == [502, 200]


async def test_dm_closed_is_forbidden_50007(dc, spawn_bot):
    bot, guild, buyer, proc = await _online(dc, spawn_bot)
    await dc.set_faults(bot, dms_closed=[buyer.id])
    reply = await (await buyer.slash(bot, guild, "loja", "dm")).wait_reply()
    assert reply.content == "Forbidden 403 50007"
    assert await proc.wait_line("FORBIDDEN") == "FORBIDDEN 403 50007"
    assert await buyer.dms(bot) == []

    await dc.clear_faults(bot)
    reply = await (await buyer.slash(bot, guild, "loja", "dm")).wait_reply()
    assert reply.content == "DM enviada"
    assert [m.content for m in await buyer.dms(bot)] == ["Oi por DM"]


async def test_role_above_bot_is_forbidden_50013(dc, spawn_bot):
    bot, guild, buyer, _ = await _online(dc, spawn_bot)
    top = await dc.call(
        "POST", f"/_sandbox/guilds/{guild.id}/roles", json={"name": "Admin", "position": 99}
    )
    reply = await (await buyer.slash(bot, guild, "loja", "cargo", {"role": top["id"]})).wait_reply()
    assert reply.content == "Forbidden 50013"
    assert await buyer.roles(guild) == []


async def test_gateway_that_never_sends_ready(dc, spawn_bot):
    bot, _, _ = await _world(dc)
    await dc.set_faults(bot, no_ready=True)
    proc = await spawn_bot(bot)
    info = await dc.wait_bot(bot, lambda b: b["identify_count"] == 1 and b["open_connections"])
    assert info["resume_count"] == 0
    await asyncio.sleep(1.0)
    assert not any(line.startswith("READY") for line in proc.lines)
    assert await dc.commands(bot) == []  # the bot never got far enough to sync


async def test_session_start_limit_exhausted_stops_disnake(dc, spawn_bot):
    bot, _, _ = await _world(dc)
    await dc.set_session_start_limit(bot, remaining=0)
    proc = await spawn_bot(bot)
    exc = await proc.exception()
    assert exc["type"] == "SessionStartLimitReached"
    assert (await dc.bot_info(bot))["identify_count"] == 0
