"""The Discord stand-in's channel permission overwrites (issue 18): rendered in the channel
objects, applied to Create Message in Discord's order, changed through the control API."""

from __future__ import annotations

import httpx
import pytest

SEND_MESSAGES = 1 << 11
MANAGE_GUILD = 1 << 5


@pytest.fixture
async def world(sandbox, dc):
    bot = await dc.create_bot("Loja")
    guild = await dc.create_guild("G", channels=["loja", "vendas"], roles=["VIP"], bots=[bot])
    headers = {"Authorization": f"Bot {bot.token}"}
    async with httpx.AsyncClient(base_url=sandbox.discord_api_base, headers=headers) as http:
        yield {"bot": bot, "guild": guild, "http": http}


async def test_overwrites_are_listed_and_applied_everyone_then_roles_then_member(world, dc):
    http, guild, bot = world["http"], world["guild"], world["bot"]
    vendas = guild.channel("vendas")

    async def send() -> int:
        return (await http.post(f"/channels/{vendas}/messages", json={"content": "x"})).status_code

    assert await send() == 200
    await dc.set_overwrite(vendas, guild.id, deny=SEND_MESSAGES)  # @everyone
    listed = (await http.get(f"/guilds/{guild.id}/channels")).json()
    [channel] = [c for c in listed if c["id"] == vendas]
    assert channel["permission_overwrites"] == [
        {"id": guild.id, "type": 0, "allow": "0", "deny": str(SEND_MESSAGES)}
    ]
    denied = await http.post(f"/channels/{vendas}/messages", json={"content": "x"})
    assert (denied.status_code, denied.json()["code"]) == (403, 50013)
    assert (
        await http.post(f"/channels/{guild.channel('loja')}/messages", json={"content": "x"})
    ).status_code == 200
    await dc.set_overwrite(vendas, bot.user_id, member=True, allow=SEND_MESSAGES)
    assert await send() == 200  # the member's own overwrite has the last word
    await dc.delete_overwrite(vendas, bot.user_id)
    assert await send() == 403
    await dc.delete_overwrite(vendas, guild.id)
    assert await send() == 200


async def test_role_edits_change_permissions_and_order(world, dc):
    http, guild = world["http"], world["guild"]
    role = await dc.edit_role(guild, guild.role("VIP"), permissions=MANAGE_GUILD, position=50)
    assert (role["permissions"], role["position"]) == (str(MANAGE_GUILD), 50)
    roles = {r["name"]: r for r in (await http.get(f"/guilds/{guild.id}/roles")).json()}
    assert roles["VIP"]["position"] == 50 and roles["VIP"]["permissions"] == str(MANAGE_GUILD)
