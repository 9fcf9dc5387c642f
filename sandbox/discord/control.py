"""Control API under /_sandbox: build the world, inject faults, read observations."""

from __future__ import annotations

from aiohttp import web

from sandbox.discord import payloads, threads
from sandbox.discord.control_common import _intents, _json, bot_view, guild_view
from sandbox.discord.control_faults import FAULT_ROUTES
from sandbox.discord.control_perms import PERMISSION_ROUTES
from sandbox.discord.http_util import json_response, state_of
from sandbox.discord.interactions import message_view, record
from sandbox.discord.messages import create_message
from sandbox.discord.models import (
    BOT_PERMISSIONS,
    GUILD_TEXT,
    Guild,
)
from sandbox.discord.state import DiscordState, SandboxError
from sandbox.discord.user_actions import ROUTES as ACTION_ROUTES


async def create_bot(request: web.Request) -> web.Response:
    state = state_of(request)
    body = await _json(request)
    app = state.create_bot(
        body.get("name") or "SandboxBot",
        enabled_intents=_intents(body.get("privileged_intents")),
        owner_id=body.get("owner_id"),
        token=body.get("token"),
    )
    return json_response(bot_view(state, app), 201)


async def get_bot(request: web.Request) -> web.Response:
    state = state_of(request)
    return json_response(bot_view(state, state.bot(request.match_info["app_id"])))


async def create_user(request: web.Request) -> web.Response:
    state = state_of(request)
    body = await _json(request)
    user = state.create_user(
        body.get("username") or "buyer",
        global_name=body.get("global_name"),
        locale=body.get("locale") or "pt-BR",
        email=body.get("email"),
    )
    return json_response(payloads.me(user, with_email=True), 201)


async def create_guild(request: web.Request) -> web.Response:
    """{name, owner_id?, locale?, channels:[{name,type?}], roles:[{name,permissions?}],
    bots:[app_id], members:[{user_id, roles:[role names or ids]}]}"""
    state = state_of(request)
    body = await _json(request)
    owner_id = body.get("owner_id") or state.create_user("guild-owner").id
    guild = state.create_guild(
        body.get("name") or "Sandbox Guild", owner_id, locale=body.get("locale") or "pt-BR"
    )
    for ch in body.get("channels") or [{"name": "general"}]:
        state.create_channel(guild, ch.get("name"), type=int(ch.get("type", GUILD_TEXT)))
    for r in body.get("roles") or []:
        state.create_role(
            guild, r["name"], int(r.get("permissions", 0)), color=int(r.get("color", 0))
        )
    for app_id in body.get("bots") or []:
        _add_bot(state, guild, app_id, BOT_PERMISSIONS, body.get("owner_id"))
    for m in body.get("members") or []:
        state.add_member(guild, m["user_id"], _role_ids(guild, m.get("roles")))
    return json_response(guild_view(state, guild), 201)


def _role_ids(guild: Guild, refs: list[str] | None) -> list[str]:
    by_name = {r.name: r.id for r in guild.roles.values()}
    return [by_name.get(ref, ref) for ref in refs or []]


def _add_bot(
    state: DiscordState, guild: Guild, app_id: str, permissions: int, added_by: str | None = None
) -> None:
    """A user adds the bot (None: its owner). A private bot (`bot_public` false) can only be
    added by its owner (https://discord.com/developers/docs/resources/application#application-object).
    The bot gets a GUILD_CREATE, as on a join while connected."""
    app = state.bot(app_id)
    if not app.bot_public and added_by not in (None, app.owner_id):
        raise SandboxError(403, 50001, "Private application: only its owner can add it")
    state.add_bot_to_guild(guild, app, permissions)
    state.dispatch(app, "GUILD_CREATE", payloads.guild(state, guild, full=True))


async def get_guild(request: web.Request) -> web.Response:
    state = state_of(request)
    return json_response(guild_view(state, state.guild(request.match_info["guild_id"])))


async def add_guild_bot(request: web.Request) -> web.Response:
    state = state_of(request)
    guild = state.guild(request.match_info["guild_id"])
    body = await _json(request)
    _add_bot(
        state,
        guild,
        body["application_id"],
        int(body.get("permissions", BOT_PERMISSIONS)),
        body.get("added_by"),
    )
    return json_response(guild_view(state, guild), 201)


async def add_member(request: web.Request) -> web.Response:
    state = state_of(request)
    guild = state.guild(request.match_info["guild_id"])
    body = await _json(request)
    member = state.add_member(guild, body["user_id"], _role_ids(guild, body.get("roles")))
    data = dict(payloads.member(state, guild, member), guild_id=guild.id)
    for app_id in guild.bots:
        if state.hub:
            state.hub.dispatch(app_id, "GUILD_MEMBER_ADD", data, intent=1 << 1)
    return json_response(data, 201)


async def remove_member(request: web.Request) -> web.Response:
    """The member leaves (or is kicked): their roles go with them, and bots with the members
    intent get GUILD_MEMBER_REMOVE {guild_id, user}; a rejoin starts with no roles
    (https://discord.com/developers/docs/topics/gateway-events#guild-member-remove)."""
    state = state_of(request)
    guild = state.guild(request.match_info["guild_id"])
    member = guild.members.pop(request.match_info["user_id"], None)
    if member is None:
        raise SandboxError(404, 10007, "Unknown Member")
    data = {"guild_id": guild.id, "user": payloads.user(state.user(member.user_id))}
    for app_id in guild.bots:
        if state.hub:
            state.hub.dispatch(app_id, "GUILD_MEMBER_REMOVE", data, intent=1 << 1)
    return web.Response(status=204)


async def get_member(request: web.Request) -> web.Response:
    state = state_of(request)
    guild = state.guild(request.match_info["guild_id"])
    member = guild.members.get(request.match_info["user_id"])
    if member is None:
        raise SandboxError(404, 10007, "Unknown Member")
    data = payloads.member(state, guild, member, perms=True)
    data["role_names"] = [guild.roles[r].name for r in member.roles if r in guild.roles]
    return json_response(data)


async def add_channel(request: web.Request) -> web.Response:
    state = state_of(request)
    guild = state.guild(request.match_info["guild_id"])
    body = await _json(request)
    channel = state.create_channel(guild, body.get("name"), type=int(body.get("type", 0)))
    data = payloads.channel(state, channel)
    for app_id in guild.bots:
        state.dispatch(state.bots[app_id], "CHANNEL_CREATE", data)
    return json_response(data, 201)


async def add_role(request: web.Request) -> web.Response:
    state = state_of(request)
    guild = state.guild(request.match_info["guild_id"])
    body = await _json(request)
    role = state.create_role(
        guild,
        body["name"],
        int(body.get("permissions", 0)),
        color=int(body.get("color", 0)),
        position=body.get("position"),
    )
    data = {"guild_id": guild.id, "role": payloads.role(role)}
    for app_id in guild.bots:
        state.dispatch(state.bots[app_id], "GUILD_ROLE_CREATE", data)
    return json_response(payloads.role(role), 201)


# ---- observations ------------------------------------------------------------------
async def bot_commands(request: web.Request) -> web.Response:
    state = state_of(request)
    app = state.bot(request.match_info["app_id"])
    out = list(app.commands.values())
    for cmds in app.guild_commands.values():
        out.extend(cmds.values())
    return json_response(out)


async def bot_requests(request: web.Request) -> web.Response:
    state = state_of(request)
    app = state.bot(request.match_info["app_id"])
    method, path = request.query.get("method"), request.query.get("path")
    rows = [
        r
        for r in app.stats.requests
        if (not method or r["method"] == method) and (not path or r["path"] == path)
    ]
    return json_response(rows)


async def channel_messages(request: web.Request) -> web.Response:
    state = state_of(request)
    channel = state.channel(request.match_info["channel_id"])
    eph = request.query.get("include_ephemeral") in ("1", "true")
    msgs = state.channel_history(channel.id, include_ephemeral=eph)
    return json_response([message_view(state, m) for m in msgs])


async def user_dms(request: web.Request) -> web.Response:
    """DM messages between this user and bots (oldest first); ?application_id= filters."""
    state = state_of(request)
    user = state.user(request.match_info["user_id"])
    only = request.query.get("application_id")
    out = []
    for (bot_user_id, user_id), channel_id in state.dm_channels.items():
        app = state.bot_by_user(bot_user_id)
        if user_id != user.id or (only and (app is None or app.application_id != only)):
            continue
        out.extend(message_view(state, m) for m in state.channel_history(channel_id))
    out.sort(key=lambda m: int(m["id"]))
    return json_response(out)


async def get_interaction(request: web.Request) -> web.Response:
    state = state_of(request)
    inter = state.interactions.get(request.match_info["interaction_id"])
    if inter is None:
        raise SandboxError(404, 10062, "Unknown interaction")
    return json_response(record(state, inter))


async def attachment(request: web.Request) -> web.Response:
    """The bytes of a message attachment or of a file given as a slash-command option."""
    att = state_of(request).attachment(request.match_info["attachment_id"])
    return web.Response(body=att.data, content_type=att.content_type.split(";")[0])


async def health(request: web.Request) -> web.Response:
    state = state_of(request)
    return json_response(
        {
            "ok": True,
            "bots": len(state.bots),
            "users": len(state.users),
            "guilds": len(state.guilds),
            "connections": len(state.hub.connections) if state.hub else 0,
            "unknown_routes": state.unknown_routes[-50:],
        }
    )


async def patch_config(request: web.Request) -> web.Response:
    state = state_of(request)
    body = await _json(request)
    for key, value in body.items():
        if key == "base_url" or not hasattr(state.config, key):
            raise SandboxError(400, 0, f"unknown config key {key!r}")
        setattr(state.config, key, type(getattr(state.config, key))(value))
    return json_response(vars(state.config))


async def create_oauth_app(request: web.Request) -> web.Response:
    state = state_of(request)
    body = await _json(request)
    app = state.create_oauth_app(
        body.get("redirect_uris") or [],
        client_id=body.get("client_id"),
        client_secret=body.get("client_secret"),
        name=body.get("name") or "Sandbox OAuth app",
    )
    return json_response(vars(app), 201)


async def user_message(request: web.Request) -> web.Response:
    """A human user posts a message in a channel (dispatched as MESSAGE_CREATE)."""
    state = state_of(request)
    channel = state.channel(request.match_info["channel_id"])
    body = await _json(request)
    user = state.user(body["user_id"])
    if not threads.can_see(state, channel, user.id):  # a private thread: members only
        raise SandboxError(403, 50001, "Missing Access")
    threads.before_post(state, channel, user.id)
    msg = create_message(state, channel, user.id, {"content": body.get("content", "")}, {})
    return json_response(message_view(state, msg), 201)


P = "/_sandbox"
ROUTES = [
    ("GET", f"{P}/health", health),
    ("PATCH", f"{P}/config", patch_config),
    ("POST", f"{P}/bots", create_bot),
    ("GET", f"{P}/bots/{{app_id}}", get_bot),
    ("GET", f"{P}/bots/{{app_id}}/commands", bot_commands),
    ("GET", f"{P}/bots/{{app_id}}/requests", bot_requests),
    ("POST", f"{P}/users", create_user),
    ("GET", f"{P}/users/{{user_id}}/dms", user_dms),
    ("POST", f"{P}/guilds", create_guild),
    ("GET", f"{P}/guilds/{{guild_id}}", get_guild),
    ("POST", f"{P}/guilds/{{guild_id}}/bots", add_guild_bot),
    ("POST", f"{P}/guilds/{{guild_id}}/members", add_member),
    ("GET", f"{P}/guilds/{{guild_id}}/members/{{user_id}}", get_member),
    ("DELETE", f"{P}/guilds/{{guild_id}}/members/{{user_id}}", remove_member),
    ("POST", f"{P}/guilds/{{guild_id}}/channels", add_channel),
    ("POST", f"{P}/guilds/{{guild_id}}/roles", add_role),
    ("GET", f"{P}/channels/{{channel_id}}/messages", channel_messages),
    ("POST", f"{P}/channels/{{channel_id}}/messages", user_message),
    ("GET", f"{P}/interactions/{{interaction_id}}", get_interaction),
    ("GET", f"{P}/attachments/{{attachment_id}}/{{filename}}", attachment),
    ("POST", f"{P}/oauth/apps", create_oauth_app),
    *FAULT_ROUTES,
    *PERMISSION_ROUTES,
    *ACTION_ROUTES,
]
