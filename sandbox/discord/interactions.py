"""Interactions: building INTERACTION_CREATE payloads, the callback and webhook routes."""

from __future__ import annotations

import base64
import secrets
import time
from typing import Any

from aiohttp import web

from sandbox.discord import incoming_webhooks, payloads
from sandbox.discord.http_util import json_response, no_content, read_body, state_of
from sandbox.discord.messages import create_message, delete_message, edit_message
from sandbox.discord.models import (
    DM,
    EPHEMERAL,
    LOADING,
    BotApp,
    Channel,
    Interaction,
    Message,
)
from sandbox.discord.state import DiscordState, SandboxError

ACK_TYPES = {4, 5, 6, 7, 8, 9}
MODAL_SUBMIT = 5  # interaction type


def new_token(inter_id: str) -> str:
    raw = f"interaction:{inter_id}:{secrets.token_hex(24)}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def by_token(state: DiscordState, app_id: str, token: str) -> Interaction:
    """Find the interaction a webhook token belongs to (401 when unknown/expired)."""
    try:
        inter_id = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).split(b":")[1]
        inter = state.interactions[inter_id.decode()]
    except (ValueError, IndexError, KeyError):
        raise SandboxError(401, 50027, "Invalid Webhook Token") from None
    if inter.token != token or inter.application_id != app_id:
        raise SandboxError(401, 50027, "Invalid Webhook Token")
    if time.monotonic() - inter.created > state.config.interaction_token_ttl_s:
        raise SandboxError(401, 50027, "Invalid Webhook Token")
    return inter


def build_payload(state: DiscordState, inter: Interaction) -> dict[str, Any]:
    """The INTERACTION_CREATE `d` object disnake parses."""
    app = state.bots[inter.application_id]
    channel = state.channels[inter.channel_id]
    user = state.users[inter.user_id]
    out: dict[str, Any] = {
        "id": inter.id,
        "application_id": inter.application_id,
        "type": inter.type,
        "data": inter.data,
        "channel": payloads.channel(state, channel),
        "channel_id": channel.id,
        "token": inter.token,
        "version": 1,
        "locale": inter.locale,
        "entitlements": [],
        "attachment_size_limit": 10 * 1024 * 1024,
    }
    if inter.guild_id:
        guild = state.guilds[inter.guild_id]
        out["guild_id"] = guild.id
        out["guild"] = {"id": guild.id, "locale": guild.locale, "features": []}
        out["guild_locale"] = guild.locale
        out["member"] = payloads.member(state, guild, guild.members[user.id], perms=True)
        out["app_permissions"] = str(state.permissions(guild, app.user_id))
        out["authorizing_integration_owners"] = {"0": guild.id}
        out["context"] = 0
    else:
        out["user"] = payloads.user(user)
        out["app_permissions"] = str(1 << 11 | 1 << 14 | 1 << 15)
        out["authorizing_integration_owners"] = {"0": "0"}
        out["context"] = 1
    if inter.message_id:
        out["message"] = payloads.message(state, state.messages[inter.message_id])
    return out


def start(
    state: DiscordState,
    app: BotApp,
    type_: int,
    user_id: str,
    channel: Channel,
    data: dict[str, Any],
    *,
    locale: str,
    message_id: str | None = None,
) -> Interaction:
    """Record a new interaction and dispatch INTERACTION_CREATE to the bot."""
    inter_id = state.snowflake()
    inter = Interaction(
        inter_id,
        new_token(inter_id),
        app.application_id,
        type_,
        user_id,
        channel.id,
        channel.guild_id,
        data,
        locale,
        message_id,
    )
    state.interactions[inter.id] = inter
    state.dispatch(app, "INTERACTION_CREATE", build_payload(state, inter))
    return inter


def record(state: DiscordState, inter: Interaction) -> dict[str, Any]:
    """What the user saw for this interaction (control API view)."""

    def msg(mid: str | None) -> dict[str, Any] | None:
        m = state.messages.get(mid) if mid else None
        return None if m is None or m.deleted else message_view(state, m)

    return {
        "id": inter.id,
        "type": inter.type,
        "application_id": inter.application_id,
        "user_id": inter.user_id,
        "channel_id": inter.channel_id,
        "guild_id": inter.guild_id,
        "callback_type": inter.callback_type,
        "acknowledged": inter.callback_type is not None,
        "original": msg(inter.original_id),
        "followups": [m for m in map(msg, inter.followup_ids) if m],
        "source_message": msg(inter.message_id),
        "updated": inter.updated,
        "modal": inter.modal,
        "autocomplete": inter.autocomplete,
        "error": inter.error,
        "age_s": time.monotonic() - inter.created,
    }


def message_view(state: DiscordState, m: Message) -> dict[str, Any]:
    out = payloads.message(state, m)
    out["ephemeral"] = m.ephemeral
    out["loading"] = bool(m.flags & LOADING)
    out["interaction_id"] = m.interaction_id
    out["allowed_mentions"] = m.allowed_mentions  # as the sender asked (None: field absent)
    return out


# ---- callback ------------------------------------------------------------------
def _reply_channel(state: DiscordState, inter: Interaction) -> Channel:
    return state.channels[inter.channel_id]


def _respond_message(
    state: DiscordState, inter: Interaction, data: dict[str, Any], files: dict, *, loading: bool
) -> Message:
    app = state.bots[inter.application_id]
    channel = _reply_channel(state, inter)
    flags = int(data.get("flags") or 0)
    if loading:
        flags |= LOADING
        data = {"content": "", "flags": flags}
    body = dict(data, flags=flags)
    extra = {
        "application_id": app.application_id,
        "webhook_id": app.application_id,
        "interaction_id": inter.id,
        "visible_to": inter.user_id if flags & EPHEMERAL else None,
    }
    if loading:
        msg = state.add_message(channel, app.user_id, flags=flags, **extra)
    else:
        msg = create_message(state, channel, app.user_id, body, files, **extra)
        msg.flags |= flags & EPHEMERAL
    return msg


async def callback(request: web.Request) -> web.Response:
    state = state_of(request)
    inter = state.interactions.get(request.match_info["interaction_id"])
    if inter is None or inter.token != request.match_info["token"]:
        raise SandboxError(404, 10062, "Unknown interaction")
    if inter.callback_type is not None:
        raise SandboxError(400, 40060, "Interaction has already been acknowledged.")
    if time.monotonic() - inter.created > state.config.interaction_ack_timeout_s:
        inter.error = "timeout"
        raise SandboxError(404, 10062, "Unknown interaction")
    body, files = await read_body(request)
    ctype = int(body.get("type") or 0)
    data = body.get("data") or {}
    if ctype not in ACK_TYPES or (ctype in (6, 7) and not inter.message_id):
        raise SandboxError(400, 50035, "Invalid Form Body: type: invalid callback type")
    msg = _apply_callback(state, inter, ctype, data, files)
    inter.callback_type = ctype
    if request.query.get("with_response") in ("true", "True", "1"):
        resp: dict[str, Any] = {
            "interaction": {
                "id": inter.id,
                "type": inter.type,
                "activity_instance_id": None,
                "response_message_id": msg.id if msg else None,
                "response_message_loading": ctype == 5,
                "response_message_ephemeral": bool(msg and msg.ephemeral),
            },
            "resource": {"type": ctype},
        }
        if msg is not None:
            resp["resource"]["message"] = payloads.message(state, msg)
        return json_response(resp)
    return no_content()


def _apply_callback(
    state: DiscordState, inter: Interaction, ctype: int, data: dict[str, Any], files: dict
) -> Message | None:
    if ctype in (4, 5):
        if ctype == 5:
            inter.deferred_ephemeral = bool(int(data.get("flags") or 0) & EPHEMERAL)
        msg = _respond_message(state, inter, data, files, loading=ctype == 5)
        inter.original_id = msg.id
        return msg
    if ctype == 7:
        inter.original_id = inter.message_id
        msg = edit_message(state, state.messages[inter.message_id or ""], data, files)
        inter.updated = True
        return msg
    if ctype == 6:
        inter.original_id = inter.message_id
        return None
    if ctype == 8:
        inter.autocomplete = data.get("choices") or []
        return None
    # MODAL (9): "Not available for MODAL_SUBMIT and PING interactions"; custom_id at most 100
    # characters, title at most 45, 1 to 5 components
    # (https://discord.com/developers/docs/interactions/receiving-and-responding#interaction-response-object-modal)
    if inter.type == MODAL_SUBMIT:
        raise SandboxError(400, 50035, "Invalid Form Body: type: a modal cannot open a modal")
    if not data.get("custom_id") or not data.get("title") or not data.get("components"):
        raise SandboxError(400, 50035, "Invalid Form Body: modal needs custom_id/title")
    if len(str(data["custom_id"])) > 100 or len(str(data["title"])) > 45:
        raise SandboxError(400, 50035, "Invalid Form Body: custom_id/title too long")
    if len(data["components"]) > 5:
        raise SandboxError(400, 50035, "Invalid Form Body: components: at most 5")
    inter.modal = data
    return None


# ---- webhooks (followups and @original) ------------------------------------------
def _webhook_inter(request: web.Request) -> tuple[DiscordState, Interaction]:
    state = state_of(request)
    return state, by_token(state, request.match_info["app_id"], request.match_info["token"])


def _target_message(state: DiscordState, inter: Interaction, message_id: str) -> Message:
    if message_id == "@original":
        mid = inter.original_id
    else:
        mid = message_id if message_id in (inter.followup_ids + [inter.original_id]) else None
    msg = state.messages.get(mid or "")
    if msg is None or msg.deleted:
        raise SandboxError(404, 10008, "Unknown Message")
    return msg


async def followup(request: web.Request) -> web.Response:
    hook = incoming_webhooks.find(request)
    if hook is not None:  # an incoming webhook shares the URL shape (operators' alerts)
        return await incoming_webhooks.execute(request, hook)
    state, inter = _webhook_inter(request)
    if inter.callback_type is None:
        raise SandboxError(404, 10015, "Unknown Webhook")
    body, files = await read_body(request)
    original = state.messages.get(inter.original_id or "")
    if original is not None and original.flags & LOADING and inter.callback_type == 5:
        body = {k: v for k, v in body.items() if k != "flags"}
        msg = edit_message(state, original, dict(body, attachments=[]), files)
    else:
        msg = _respond_message(state, inter, body, files, loading=False)
        inter.followup_ids.append(msg.id)
    if request.query.get("wait") in ("true", "True", "1"):
        return json_response(payloads.message(state, msg))
    return no_content()


async def webhook_message(request: web.Request) -> web.Response:
    state, inter = _webhook_inter(request)
    msg = _target_message(state, inter, request.match_info["message_id"])
    if request.method == "GET":
        return json_response(payloads.message(state, msg))
    if request.method == "DELETE":
        delete_message(state, msg)
        return no_content()
    body, files = await read_body(request)
    if msg.id == inter.message_id:
        inter.updated = True
    return json_response(payloads.message(state, edit_message(state, msg, body, files)))


def dm_or_guild_channel(
    state: DiscordState, app: BotApp, user_id: str, channel_id: str | None
) -> Channel:
    """The channel an interaction happens in: the given one, or the bot's DM with the user."""
    if channel_id is None:
        return state.dm_channel(app.user_id, user_id)
    channel = state.channel(channel_id)
    if channel.type == DM and user_id not in channel.recipients:
        raise SandboxError(403, 50001, "Missing Access")
    return channel


ROUTES = [
    ("POST", "/interactions/{interaction_id}/{token}/callback", callback),
    ("POST", "/webhooks/{app_id}/{token}", followup),
    ("GET", "/webhooks/{app_id}/{token}/messages/{message_id}", webhook_message),
    ("PATCH", "/webhooks/{app_id}/{token}/messages/{message_id}", webhook_message),
    ("DELETE", "/webhooks/{app_id}/{token}/messages/{message_id}", webhook_message),
]
