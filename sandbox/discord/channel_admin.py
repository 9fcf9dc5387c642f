"""Create Guild Channel and Delete/Close Channel, as Discord documents them.

- Create Guild Channel needs Manage Channels (in the parent category, overwrites applied), else
  50013; `parent_id` must be a category of the guild (400 50035); the overwrites may only allow
  or deny permissions the bot has in the guild (else 50013); a CHANNEL_CREATE follows
  (https://discord.com/developers/docs/resources/guild#create-guild-channel).
- Delete/Close Channel needs Manage Channels (Manage Threads for a thread), else 50013; an
  unknown channel is 10003; answers the deleted channel and sends CHANNEL_DELETE
  (https://discord.com/developers/docs/resources/channel#deleteclose-channel).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sandbox.discord import payloads
from sandbox.discord.http_util import json_response, read_body, require_bot, state_of
from sandbox.discord.messages import invalid_form
from sandbox.discord.models import ADMINISTRATOR, GUILD_CATEGORY, GUILD_TEXT, Channel
from sandbox.discord.state import SandboxError
from sandbox.discord.threads import MANAGE_THREADS, MISSING_PERMISSIONS, THREAD_TYPES

MANAGE_CHANNELS = 1 << 4


def _overwrites(raw: Any, bot_perms: int) -> list[dict[str, Any]]:
    out = []
    for o in raw or []:
        allow, deny = int(o.get("allow") or 0), int(o.get("deny") or 0)
        if not bot_perms & ADMINISTRATOR and (allow | deny) & ~bot_perms:
            raise MISSING_PERMISSIONS
        out.append(
            {
                "id": str(o["id"]),
                "type": int(o.get("type") or 0),
                "allow": str(allow),
                "deny": str(deny),
            }
        )
    return out


async def create_guild_channel(request: web.Request) -> web.Response:
    state = state_of(request)
    app = require_bot(request)
    guild = state.guild(request.match_info["guild_id"])
    if app.application_id not in guild.bots:
        raise SandboxError(403, 50001, "Missing Access")
    body, _ = await read_body(request)
    parent = None
    if body.get("parent_id"):
        parent = state.channels.get(str(body["parent_id"]))
        if parent is None or parent.guild_id != guild.id or parent.type != GUILD_CATEGORY:
            raise invalid_form("parent_id: Not a category of this guild.")
    perms = (
        state.channel_permissions(guild, parent, app.user_id)
        if parent
        else state.permissions(guild, app.user_id)
    )
    if not perms & MANAGE_CHANNELS:
        raise MISSING_PERMISSIONS
    overwrites = _overwrites(
        body.get("permission_overwrites"), state.permissions(guild, app.user_id)
    )
    channel = state.create_channel(
        guild,
        str(body.get("name") or "canal")[:100],
        type=int(body.get("type") or GUILD_TEXT),
        parent_id=parent.id if parent else None,
    )
    channel.overwrites = overwrites
    data = payloads.channel(state, channel)
    state.dispatch(app, "CHANNEL_CREATE", data)
    return json_response(data, 201)


async def delete_channel(request: web.Request) -> web.Response:
    state = state_of(request)
    app = require_bot(request)
    channel: Channel = state.channel(request.match_info["channel_id"])
    guild = state.guilds.get(channel.guild_id or "")
    if guild is None or app.application_id not in guild.bots:
        raise SandboxError(403, 50001, "Missing Access")
    needed = MANAGE_THREADS if channel.type in THREAD_TYPES else MANAGE_CHANNELS
    if not state.channel_permissions(guild, channel, app.user_id) & needed:
        raise MISSING_PERMISSIONS
    data = payloads.channel(state, channel)
    del state.channels[channel.id]
    if channel.id in guild.channels:
        guild.channels.remove(channel.id)
    state.dispatch(app, "CHANNEL_DELETE", data)
    return json_response(data)


ROUTES = [
    ("POST", "/guilds/{guild_id}/channels", create_guild_channel),
    ("DELETE", "/channels/{channel_id}", delete_channel),
]
