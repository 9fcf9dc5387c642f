"""Members leaving, as Discord does (issue 16): the member and their roles are gone (a rejoin
starts with none), bots with the Server Members intent get GUILD_MEMBER_REMOVE {guild_id,
user}, bots without it get nothing; role changes on a role at or above the bot's highest role,
or a managed one, are refused with 403 50013
(https://discord.com/developers/docs/topics/permissions#permission-hierarchy)."""

from __future__ import annotations

import aiohttp
import httpx
import pytest

from sandbox.discord.client import SandboxAPIError
from tests.sandbox.test_discord_gateway import _connect


async def test_leave_drops_roles_and_only_members_intent_bots_hear_it(sandbox, dc):
    with_intent = await dc.create_bot("Com", privileged_intents=["members"])
    without = await dc.create_bot("Sem")
    guild = await dc.create_guild("G", roles=["VIP"], bots=[with_intent, without])
    user = await dc.create_user("ana")
    await dc.add_member(guild, user["id"], roles=["VIP"])
    async with aiohttp.ClientSession() as session:
        heard = await _connect(session, sandbox.discord_base, False)
        await heard.identify(with_intent.token, intents=513 | (1 << 1))
        assert (await heard.recv())["t"] == "GUILD_CREATE"
        deaf = await _connect(session, sandbox.discord_base, False)
        await deaf.identify(without.token, intents=513)
        assert (await deaf.recv())["t"] == "GUILD_CREATE"
        await dc.remove_member(guild, user["id"])
        event = await heard.recv()
        assert event["t"] == "GUILD_MEMBER_REMOVE"
        assert event["d"]["guild_id"] == guild.id and event["d"]["user"]["id"] == user["id"]
        with pytest.raises(TimeoutError):
            await deaf.recv(wait_s=0.5)
        await heard.ws.close()
        await deaf.ws.close()
    with pytest.raises(SandboxAPIError) as gone:
        await dc.call("GET", f"/_sandbox/guilds/{guild.id}/members/{user['id']}")
    assert gone.value.status == 404
    again = await dc.add_member(guild, user["id"])
    assert again["roles"] == []


async def test_role_at_or_above_the_bots_top_role_or_managed_is_refused_50013(sandbox, dc):
    bot = await dc.create_bot("Loja")
    guild = await dc.create_guild("G", roles=["VIP"], bots=[bot])
    user = await dc.create_user("ana")
    await dc.add_member(guild, user["id"])
    vip = guild.role("VIP")
    managed = next(r["id"] for r in guild.raw["roles"] if r.get("managed"))
    base = f"{sandbox.discord_api_base}/guilds/{guild.id}/members/{user['id']}/roles"
    auth = {"Authorization": f"Bot {bot.token}"}
    async with httpx.AsyncClient() as http:
        assert (await http.put(f"{base}/{vip}", headers=auth)).status_code == 204
        await dc.edit_role(guild, vip, position=100)
        for role in (vip, managed):
            refused = await http.delete(f"{base}/{role}", headers=auth)
            assert refused.status_code == 403 and refused.json()["code"] == 50013
