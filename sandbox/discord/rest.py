"""Bot-facing REST v10 routes: users, gateway, application, channels, messages, guilds."""

from __future__ import annotations

from aiohttp import web

from sandbox.discord import channel_admin, payloads, threads
from sandbox.discord.http_util import (
    BEARER,
    BOT_AUTH,
    json_response,
    no_content,
    read_body,
    require_bot,
    state_of,
    unauthorized,
)
from sandbox.discord.messages import (
    create_message,
    delete_message,
    edit_message,
    enforced_nonce_hit,
    invalid_form,
    remember_nonce,
)
from sandbox.discord.models import (
    ATTACH_FILES,
    DM,
    INTENT_GUILD_MEMBERS,
    MANAGE_ROLES,
    PRIVATE_THREAD,
    SEND_MESSAGES,
    VIEW_CHANNEL,
    BotApp,
    Channel,
)
from sandbox.discord.state import DiscordState, SandboxError

MISSING_ACCESS = SandboxError(403, 50001, "Missing Access")


def _visible_channel(state: DiscordState, app: BotApp, channel_id: str) -> Channel:
    channel = state.channel(channel_id)
    if not state.bot_can_see(app, channel):
        raise SandboxError(403, 50001, "Missing Access")
    return channel


# ---- users / gateway / application ----------------------------------------
async def users_me(request: web.Request) -> web.Response:
    state = state_of(request)
    app = request.get(BOT_AUTH)
    if app is not None:
        app.stats.login_count += 1
        return json_response(payloads.me(state.users[app.user_id]))
    tok = request.get(BEARER)
    if tok is None:
        raise unauthorized()
    if "identify" not in tok.scope.split():
        raise SandboxError(401, 0, "401: Unauthorized")
    return json_response(
        payloads.me(state.users[tok.user_id], with_email="email" in tok.scope.split())
    )


async def users_me_guilds(request: web.Request) -> web.Response:
    state = state_of(request)
    app = request.get(BOT_AUTH)
    tok = request.get(BEARER)
    if app is not None:
        user_id, guilds = app.user_id, state.bot_guilds(app)
    elif tok is not None:
        if "guilds" not in tok.scope.split():
            raise MISSING_ACCESS
        user_id, guilds = tok.user_id, state.user_guilds(tok.user_id)
    else:
        raise unauthorized()
    out = [
        {
            "id": g.id,
            "name": g.name,
            "icon": None,
            "banner": None,
            "owner": g.owner_id == user_id,
            "permissions": str(state.permissions(g, user_id)),
            "features": [],
        }
        for g in guilds
    ]
    return json_response(out[: int(request.query.get("limit", 200))])


async def leave_guild(request: web.Request) -> web.Response:
    """The bot leaves a guild: 204, then a GUILD_DELETE (without `unavailable`) on its gateway
    (https://discord.com/developers/docs/resources/user#leave-guild,
    https://discord.com/developers/docs/events/gateway-events#guild-delete)."""
    state = state_of(request)
    app = require_bot(request)
    guild = state.guild(request.match_info["guild_id"])
    if app.application_id not in guild.bots:
        raise SandboxError(404, 10004, "Unknown Guild")
    state.remove_bot_from_guild(guild, app)
    state.dispatch(app, "GUILD_DELETE", {"id": guild.id})
    return no_content()


async def get_user(request: web.Request) -> web.Response:
    require_bot(request)
    return json_response(payloads.user(state_of(request).user(request.match_info["user_id"])))


def _ws_url(request: web.Request) -> str:
    return f"ws://{request.host}/gateway"


async def gateway(request: web.Request) -> web.Response:
    return json_response({"url": _ws_url(request)})


async def gateway_bot(request: web.Request) -> web.Response:
    app = require_bot(request)
    lim = app.session_limit
    lim.refresh()
    return json_response(
        {
            "url": _ws_url(request),
            "shards": 1,
            "session_start_limit": {
                "total": lim.total,
                "remaining": lim.remaining,
                "reset_after": lim.reset_after(),
                "max_concurrency": lim.max_concurrency,
            },
        }
    )


async def application_me(request: web.Request) -> web.Response:
    app = require_bot(request)
    return json_response(payloads.application(state_of(request), app))


async def create_dm(request: web.Request) -> web.Response:
    state = state_of(request)
    app = require_bot(request)
    body, _ = await read_body(request)
    recipient = str(body.get("recipient_id") or "")
    if recipient not in state.users:
        raise invalid_form("recipient_id: Value is not snowflake or unknown user.")
    return json_response(payloads.channel(state, state.dm_channel(app.user_id, recipient)))


# ---- channels and messages ---------------------------------------------------
async def get_channel(request: web.Request) -> web.Response:
    state = state_of(request)
    channel = _visible_channel(state, require_bot(request), request.match_info["channel_id"])
    return json_response(payloads.channel(state, channel))


def _check_send(state: DiscordState, app: BotApp, channel: Channel, has_files: bool) -> None:
    if channel.id in app.faults.missing_permissions:
        raise SandboxError(403, 50013, "Missing Permissions")
    if channel.type == DM:
        user_id = next(u for u in channel.recipients if u != app.user_id)
        shares_guild = any(user_id in g.members for g in state.bot_guilds(app))
        if user_id in app.faults.dms_closed or not shares_guild:
            raise SandboxError(403, 50007, "Cannot send messages to this user")
        return
    guild = state.guilds[channel.guild_id or ""]
    perms = state.channel_permissions(guild, channel, app.user_id)
    if not perms & VIEW_CHANNEL:
        raise SandboxError(403, 50001, "Missing Access")
    if not perms & SEND_MESSAGES or (has_files and not perms & ATTACH_FILES):
        raise SandboxError(403, 50013, "Missing Permissions")


async def post_message(request: web.Request) -> web.Response:
    state = state_of(request)
    app = require_bot(request)
    channel = _visible_channel(state, app, request.match_info["channel_id"])
    body, files = await read_body(request)
    # From here to the answer nothing awaits: once Discord has the whole request the message
    # exists, even if the client hangs up before reading the answer (and the runner never
    # cancels handlers on disconnect: sandbox.server).
    _check_send(state, app, channel, bool(files))
    threads.before_post(state, channel, app.user_id)
    first = enforced_nonce_hit(state, channel, app.user_id, body)
    if first is not None:  # same author, same nonce, within the window: nothing new
        return json_response(dict(payloads.message(state, first), nonce=first.nonce))
    body["flags"] = int(body.get("flags") or 0) & ~64  # no ephemeral outside interactions
    msg = create_message(state, channel, app.user_id, body, files, nonce=body.get("nonce"))
    remember_nonce(state, msg)
    threads.add_mentioned_roles(state, channel, msg)
    data = payloads.message(state, msg)
    if msg.nonce is not None:  # echoed in the create answer (and MESSAGE_CREATE), not in GETs
        data["nonce"] = msg.nonce
    return json_response(data)


async def list_messages(request: web.Request) -> web.Response:
    state = state_of(request)
    app = require_bot(request)
    channel = _visible_channel(state, app, request.match_info["channel_id"])
    limit = max(1, min(100, int(request.query.get("limit", 50))))
    msgs = state.channel_history(channel.id)
    if before := request.query.get("before"):
        msgs = [m for m in msgs if int(m.id) < int(before)]
    if after := request.query.get("after"):
        msgs = [m for m in msgs if int(m.id) > int(after)]
        msgs = msgs[:limit]
    else:
        msgs = msgs[-limit:]
    return json_response(
        [threads.as_read_by(app, channel, m, payloads.message(state, m)) for m in reversed(msgs)]
    )


async def get_message(request: web.Request) -> web.Response:
    state = state_of(request)
    channel = _visible_channel(state, require_bot(request), request.match_info["channel_id"])
    msg = state.message(channel.id, request.match_info["message_id"])
    if msg.ephemeral:
        raise SandboxError(404, 10008, "Unknown Message")
    return json_response(payloads.message(state, msg))


async def patch_message(request: web.Request) -> web.Response:
    state = state_of(request)
    app = require_bot(request)
    channel = _visible_channel(state, app, request.match_info["channel_id"])
    msg = state.message(channel.id, request.match_info["message_id"])
    if msg.author_id != app.user_id:
        raise SandboxError(403, 50005, "Cannot edit a message authored by another user")
    body, files = await read_body(request)
    return json_response(payloads.message(state, edit_message(state, msg, body, files)))


async def delete_msg(request: web.Request) -> web.Response:
    state = state_of(request)
    app = require_bot(request)
    channel = _visible_channel(state, app, request.match_info["channel_id"])
    msg = state.message(channel.id, request.match_info["message_id"])
    if msg.author_id != app.user_id:
        raise SandboxError(403, 50013, "Missing Permissions")
    delete_message(state, msg)
    return no_content()


async def create_thread(request: web.Request) -> web.Response:
    state = state_of(request)
    app = require_bot(request)
    parent = _visible_channel(state, app, request.match_info["channel_id"])
    if parent.guild_id is None:
        raise SandboxError(400, 50024, "Cannot execute action on this channel type")
    body, _ = await read_body(request)
    guild = state.guilds[parent.guild_id]
    kind = int(body.get("type") or PRIVATE_THREAD)
    threads.check_start(state, app, parent, kind)
    thread = state.create_channel(
        guild, body.get("name") or "thread", type=kind, parent_id=parent.id
    )
    thread.owner_id = app.user_id
    thread.recipients = [app.user_id]
    data = payloads.channel(state, thread)
    state.dispatch(app, "THREAD_CREATE", dict(data, newly_created=True))
    return json_response(data, 201)


async def add_thread_member(request: web.Request) -> web.Response:
    state = state_of(request)
    thread = _visible_channel(state, require_bot(request), request.match_info["channel_id"])
    user = state.user(request.match_info["user_id"])
    threads.check_add_member(thread)
    if user.id not in thread.recipients:
        thread.recipients.append(user.id)
    return no_content()


# ---- guilds ------------------------------------------------------------------
def _bot_guild(request: web.Request):
    state = state_of(request)
    app = require_bot(request)
    guild = state.guild(request.match_info["guild_id"])
    if app.application_id not in guild.bots:
        raise SandboxError(403, 50001, "Missing Access")
    return state, app, guild


async def get_guild(request: web.Request) -> web.Response:
    state, _, guild = _bot_guild(request)
    data = payloads.guild(state, guild)
    if request.query.get("with_counts") in ("true", "1"):
        data["approximate_member_count"] = len(guild.members)
        data["approximate_presence_count"] = 0
    return json_response(data)


async def guild_channels(request: web.Request) -> web.Response:
    state, _, guild = _bot_guild(request)
    return json_response(
        [
            payloads.channel(state, state.channels[c])
            for c in guild.channels
            if state.channels[c].type not in (10, 11, 12)
        ]
    )


async def guild_roles(request: web.Request) -> web.Response:
    _, _, guild = _bot_guild(request)
    return json_response([payloads.role(r) for r in guild.roles.values()])


async def guild_member(request: web.Request) -> web.Response:
    state, _, guild = _bot_guild(request)
    member = guild.members.get(request.match_info["user_id"])
    if member is None:
        raise SandboxError(404, 10007, "Unknown Member")
    return json_response(payloads.member(state, guild, member))


async def member_role(request: web.Request) -> web.Response:
    """PUT/DELETE /guilds/{g}/members/{u}/roles/{r}: permission and hierarchy checked. A bot
    with Manage Roles may only change roles below its highest role, never a managed role or
    @everyone: 403 50013 otherwise
    (https://discord.com/developers/docs/topics/permissions#permission-hierarchy)."""
    state, app, guild = _bot_guild(request)
    member = guild.members.get(request.match_info["user_id"])
    if member is None:
        raise SandboxError(404, 10007, "Unknown Member")
    role = guild.roles.get(request.match_info["role_id"])
    if role is None:
        raise SandboxError(404, 10011, "Unknown Role")
    perms = state.permissions(guild, app.user_id)
    too_high = role.position >= state.top_role_position(guild, app.user_id)
    if not perms & MANAGE_ROLES or too_high or role.managed or role.id == guild.id:
        raise SandboxError(403, 50013, "Missing Permissions")
    if request.method == "PUT" and role.id not in member.roles:
        member.roles.append(role.id)
    elif request.method == "DELETE" and role.id in member.roles:
        member.roles.remove(role.id)
    else:
        return no_content()
    data = dict(payloads.member(state, guild, member), guild_id=guild.id)
    for app_id in guild.bots:
        if state.hub:
            state.hub.dispatch(app_id, "GUILD_MEMBER_UPDATE", data, intent=INTENT_GUILD_MEMBERS)
    return no_content()


ROUTES = [
    ("GET", "/users/@me", users_me),
    ("GET", "/users/@me/guilds", users_me_guilds),
    ("POST", "/users/@me/channels", create_dm),
    ("DELETE", "/users/@me/guilds/{guild_id}", leave_guild),
    ("GET", "/users/{user_id}", get_user),
    ("GET", "/gateway", gateway),
    ("GET", "/gateway/bot", gateway_bot),
    ("GET", "/oauth2/applications/@me", application_me),
    ("GET", "/applications/@me", application_me),
    ("GET", "/channels/{channel_id}", get_channel),
    ("GET", "/channels/{channel_id}/messages", list_messages),
    ("POST", "/channels/{channel_id}/messages", post_message),
    ("GET", "/channels/{channel_id}/messages/{message_id}", get_message),
    ("PATCH", "/channels/{channel_id}/messages/{message_id}", patch_message),
    ("DELETE", "/channels/{channel_id}/messages/{message_id}", delete_msg),
    ("POST", "/channels/{channel_id}/threads", create_thread),
    ("PUT", "/channels/{channel_id}/thread-members/{user_id}", add_thread_member),
    *threads.ROUTES,
    *channel_admin.ROUTES,
    ("GET", "/guilds/{guild_id}", get_guild),
    ("GET", "/guilds/{guild_id}/channels", guild_channels),
    ("GET", "/guilds/{guild_id}/roles", guild_roles),
    ("GET", "/guilds/{guild_id}/members/{user_id}", guild_member),
    ("PUT", "/guilds/{guild_id}/members/{user_id}/roles/{role_id}", member_role),
    ("DELETE", "/guilds/{guild_id}/members/{user_id}/roles/{role_id}", member_role),
]
