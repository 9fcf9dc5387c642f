"""Control API, permissions: what a server admin changes in Discord's UI — a channel's
permission overwrites (Edit Channel → Permissions) and a role's permissions and position
(Server Settings → Roles). Each change is dispatched to the guild's bots as Discord does
(CHANNEL_UPDATE, GUILD_ROLE_UPDATE:
https://discord.com/developers/docs/events/gateway-events#channel-update,
https://discord.com/developers/docs/events/gateway-events#guild-role-update)."""

from __future__ import annotations

from aiohttp import web

from sandbox.discord import payloads
from sandbox.discord.control_common import _json
from sandbox.discord.http_util import json_response, no_content, state_of
from sandbox.discord.state import DiscordState, SandboxError


def _notify_channel(state: DiscordState, channel_id: str) -> None:
    channel = state.channel(channel_id)
    guild = state.guild(channel.guild_id or "")
    data = payloads.channel(state, channel)
    for app_id in guild.bots:
        state.dispatch(state.bots[app_id], "CHANNEL_UPDATE", data)


async def put_overwrite(request: web.Request) -> web.Response:
    """{type: 0 role | 1 member, allow, deny}: like PUT /channels/{c}/permissions/{id}
    (https://discord.com/developers/docs/resources/channel#edit-channel-permissions)."""
    state = state_of(request)
    channel = state.channel(request.match_info["channel_id"])
    if channel.guild_id is None:
        raise SandboxError(400, 50024, "Cannot execute action on this channel type")
    target = request.match_info["overwrite_id"]
    body = await _json(request)
    kind = int(body.get("type", 0))
    if kind not in (0, 1):
        raise SandboxError(400, 50035, "Invalid Form Body")
    entry = {
        "id": target,
        "type": kind,
        "allow": str(int(body.get("allow", 0))),
        "deny": str(int(body.get("deny", 0))),
    }
    channel.overwrites = [o for o in channel.overwrites if o["id"] != target] + [entry]
    _notify_channel(state, channel.id)
    return no_content()


async def delete_overwrite(request: web.Request) -> web.Response:
    state = state_of(request)
    channel = state.channel(request.match_info["channel_id"])
    target = request.match_info["overwrite_id"]
    channel.overwrites = [o for o in channel.overwrites if o["id"] != target]
    _notify_channel(state, channel.id)
    return no_content()


async def patch_role(request: web.Request) -> web.Response:
    """{permissions?, position?, name?}: like PATCH /guilds/{g}/roles/{r}
    (https://discord.com/developers/docs/resources/guild#modify-guild-role)."""
    state = state_of(request)
    guild = state.guild(request.match_info["guild_id"])
    role = guild.roles.get(request.match_info["role_id"])
    if role is None:
        raise SandboxError(404, 10011, "Unknown Role")
    body = await _json(request)
    if "permissions" in body:
        role.permissions = int(body["permissions"])
    if "position" in body:
        role.position = int(body["position"])
    if "name" in body:
        role.name = str(body["name"])
    data = {"guild_id": guild.id, "role": payloads.role(role)}
    for app_id in guild.bots:
        state.dispatch(state.bots[app_id], "GUILD_ROLE_UPDATE", data)
    return json_response(payloads.role(role))


P = "/_sandbox"
PERMISSION_ROUTES = [
    ("PUT", f"{P}/channels/{{channel_id}}/permissions/{{overwrite_id}}", put_overwrite),
    ("DELETE", f"{P}/channels/{{channel_id}}/permissions/{{overwrite_id}}", delete_overwrite),
    ("PATCH", f"{P}/guilds/{{guild_id}}/roles/{{role_id}}", patch_role),
]
