"""Threads and ticket channels in the Discord stand-in as Discord documents them
(sandbox/discord/threads.py, channel_admin.py):
who may start, join, post in, archive and lock a private thread, and what a bot without the
Message Content intent reads back."""

from __future__ import annotations

import httpx
import pytest

from sandbox.discord.client_types import SandboxAPIError

CREATE_PRIVATE_THREADS = 1 << 36
MANAGE_THREADS = 1 << 34
MANAGE_CHANNELS = 1 << 4


@pytest.fixture
async def world(sandbox, dc):
    bot = await dc.create_bot("Loja")
    guild = await dc.create_guild("G", channels=["suporte"], roles=["Equipe"], bots=[bot])
    buyer = await dc.buyer("ana", guilds=[guild])
    staff = await dc.buyer("bia", guilds=[])
    await dc.add_member(guild, staff.id, roles=["Equipe"])
    headers = {"Authorization": f"Bot {bot.token}"}
    async with httpx.AsyncClient(base_url=sandbox.discord_api_base, headers=headers) as http:
        yield {"bot": bot, "guild": guild, "buyer": buyer, "staff": staff, "http": http}


def _bot_role(sandbox, guild):
    return next(r for r in sandbox.discord_state.guilds[guild.id].roles.values() if r.managed)


async def _thread(http, channel) -> str:
    made = await http.post(f"/channels/{channel}/threads", json={"name": "t", "type": 12})
    assert made.status_code == 201, made.text
    return made.json()["id"]


async def test_private_thread_needs_create_private_threads_and_a_known_channel(sandbox, world):
    http, guild = world["http"], world["guild"]
    unknown = await http.post("/channels/1234/threads", json={"name": "t", "type": 12})
    assert (unknown.status_code, unknown.json()["code"]) == (404, 10003)
    _bot_role(sandbox, guild).permissions &= ~CREATE_PRIVATE_THREADS
    denied = await http.post(
        f"/channels/{guild.channel('suporte')}/threads", json={"name": "t", "type": 12}
    )
    assert (denied.status_code, denied.json()["code"]) == (403, 50013)


async def test_lock_needs_manage_threads_archive_by_its_creator_and_locked_refuses_posts(
    sandbox, world, dc
):
    http, guild = world["http"], world["guild"]
    thread = await _thread(http, guild.channel("suporte"))
    assert (await http.put(f"/channels/{thread}/thread-members/{world['buyer'].id}")).is_success
    # private: members only (the staff member is not one yet)
    await world["buyer"].say(thread, "oi")
    with pytest.raises(SandboxAPIError, match="50001"):
        await world["staff"].say(thread, "oi")
    _bot_role(sandbox, guild).permissions &= ~MANAGE_THREADS  # invited without it
    locked = await http.patch(f"/channels/{thread}", json={"archived": True, "locked": True})
    assert (locked.status_code, locked.json()["code"]) == (403, 50013)
    archived = await http.patch(f"/channels/{thread}", json={"archived": True})
    assert archived.json()["thread_metadata"]["archived"] is True
    # an archived thread takes no new member; an unlocked one is unarchived by a message
    late = await http.put(f"/channels/{thread}/thread-members/{world['staff'].id}")
    assert (late.status_code, late.json()["code"]) == (400, 50083)
    await world["buyer"].say(thread, "ainda aqui")
    assert sandbox.discord_state.channels[thread].archived is False
    _bot_role(sandbox, guild).permissions |= MANAGE_THREADS
    done = await http.patch(f"/channels/{thread}", json={"archived": True, "locked": True})
    meta = done.json()["thread_metadata"]
    assert meta["archived"] is True and meta["locked"] is True
    with pytest.raises(SandboxAPIError, match="50083"):
        await world["buyer"].say(thread, "alguém?")


async def test_role_mention_brings_members_and_reads_need_message_content(sandbox, world, dc):
    http, guild = world["http"], world["guild"]
    thread = await _thread(http, guild.channel("suporte"))
    role = guild.role("Equipe")
    sent = await http.post(
        f"/channels/{thread}/messages",
        json={"content": f"<@&{role}> ajuda", "allowed_mentions": {"roles": [role]}},
    )
    assert sent.status_code == 200
    assert world["staff"].id in sandbox.discord_state.channels[thread].recipients
    await world["staff"].say(thread, "cheguei")
    read = (await http.get(f"/channels/{thread}/messages")).json()
    assert [m["content"] for m in read] == ["", f"<@&{role}> ajuda"]  # newest first
    sandbox.discord_state.bots[world["bot"].application_id].enabled_intents |= 1 << 15
    read = (await http.get(f"/channels/{thread}/messages")).json()
    assert read[0]["content"] == "cheguei"


async def test_guild_channel_create_and_delete_need_manage_channels(sandbox, world, dc):
    http, guild = world["http"], world["guild"]
    category = (
        await dc.call(
            "POST", f"/_sandbox/guilds/{guild.id}/channels", json={"name": "T", "type": 4}
        )
    )["id"]
    body = {
        "name": "ticket-1",
        "type": 0,
        "parent_id": category,
        "permission_overwrites": [
            {"id": guild.id, "type": 0, "allow": "0", "deny": str(1 << 10)},
            {"id": world["buyer"].id, "type": 1, "allow": str(1 << 10), "deny": "0"},
            {"id": world["bot"].user_id, "type": 1, "allow": str(1 << 10), "deny": "0"},
        ],
    }
    denied = await http.post(f"/guilds/{guild.id}/channels", json=body)
    assert (denied.status_code, denied.json()["code"]) == (403, 50013)
    _bot_role(sandbox, guild).permissions |= MANAGE_CHANNELS
    not_a_category = await http.post(
        f"/guilds/{guild.id}/channels", json=dict(body, parent_id=guild.channel("suporte"))
    )
    assert (not_a_category.status_code, not_a_category.json()["code"]) == (400, 50035)
    beyond = dict(body, permission_overwrites=[{"id": guild.id, "type": 0, "allow": str(1 << 3)}])
    too_much = await http.post(f"/guilds/{guild.id}/channels", json=beyond)
    assert (too_much.status_code, too_much.json()["code"]) == (403, 50013)  # Administrator
    made = await http.post(f"/guilds/{guild.id}/channels", json=body)
    assert made.status_code == 201 and made.json()["parent_id"] == category
    channel = made.json()["id"]
    await world["buyer"].say(channel, "oi")
    with pytest.raises(SandboxAPIError, match="50001"):  # @everyone cannot see it
        await world["staff"].say(channel, "oi")
    assert (await http.delete(f"/channels/{channel}")).status_code == 200
    gone = await http.delete(f"/channels/{channel}")
    assert (gone.status_code, gone.json()["code"]) == (404, 10003)
