"""Creating, editing and announcing messages (shared by REST, webhooks and control)."""

from __future__ import annotations

import re
import time
from typing import Any

from sandbox.discord import payloads
from sandbox.discord.models import (
    INTENT_DIRECT_MESSAGES,
    INTENT_GUILD_MESSAGES,
    MENTION_EVERYONE,
    Attachment,
    Channel,
    Message,
)
from sandbox.discord.state import DiscordState, SandboxError

ALLOWED_FLAGS = 4 | 64 | 4096 | 32768
_USER_MENTION = re.compile(r"<@!?(\d{1,25})>")
_EVERYONE = re.compile(r"@(?:everyone|here)\b")


def invalid_form(detail: str) -> SandboxError:
    return SandboxError(400, 50035, f"Invalid Form Body: {detail}")


def _validate(content: str, embeds: list[Any], components: list[Any], n_files: int) -> None:
    if len(content) > 2000:
        raise invalid_form("content: Must be 2000 or fewer in length.")
    if len(embeds) > 10:
        raise invalid_form("embeds: Must be 10 or fewer in length.")
    if len(components) > 40:
        raise invalid_form("components: too many components.")
    if not (content or embeds or components or n_files):
        raise SandboxError(400, 50006, "Cannot send an empty message")


# "The file upload size limit applies to each file in a request. The default limit is 10 MiB
# for all users" (a server's boost can raise it; a DM has none); a bigger file is refused with
# 413 / 40005 "Request entity too large".
# https://discord.com/developers/docs/reference#uploading-files
# https://github.com/discord/discord-api-docs/issues/6058 (the 413 / 40005 answer)
FILE_LIMIT = 10 * 1024 * 1024


def _check_sizes(attachments: list[Attachment]) -> None:
    if any(len(a.data) > FILE_LIMIT for a in attachments):
        raise SandboxError(413, 40005, "Request entity too large")


def message_fields(payload: dict[str, Any], files: dict[int, Attachment]) -> dict[str, Any]:
    """Fields of a new Message from a create payload."""
    content = str(payload.get("content") or "")
    embeds = list(payload.get("embeds") or ([payload["embed"]] if payload.get("embed") else []))
    components = list(payload.get("components") or [])
    attachments = [files[k] for k in sorted(files)]
    _validate(content, embeds, components, len(attachments))
    _check_sizes(attachments)
    return {
        "content": content,
        "embeds": embeds,
        "components": components,
        "attachments": attachments,
        "flags": int(payload.get("flags") or 0) & ALLOWED_FLAGS,
        "reference": payload.get("message_reference"),
    }


def apply_mentions(state: DiscordState, msg: Message, allowed: Any) -> None:
    """Record the request's `allowed_mentions` and who the message pings. Discord parses the
    content only (never embeds); with the field absent every mention type is parsed, with
    `parse: []` and no ids nothing pings; @everyone/@here also needs the author's Mention
    Everyone permission. https://discord.com/developers/docs/resources/message#allowed-mentions-object"""
    msg.allowed_mentions = allowed if isinstance(allowed, dict) else None
    parse = (
        {"users", "roles", "everyone"}
        if msg.allowed_mentions is None
        else set(msg.allowed_mentions.get("parse") or [])
    )
    listed = (
        set()
        if msg.allowed_mentions is None
        else {str(u) for u in msg.allowed_mentions.get("users") or []}
    )
    msg.mentions = [
        u
        for u in dict.fromkeys(_USER_MENTION.findall(msg.content))
        if u in state.users and ("users" in parse or u in listed)
    ]
    guild = state.guilds.get(msg.guild_id or "")
    msg.mention_everyone = bool(
        guild is not None
        and not msg.ephemeral
        and "everyone" in parse
        and _EVERYONE.search(msg.content)
        and state.permissions(guild, msg.author_id) & MENTION_EVERYONE
    )


NONCE_MAX_LEN = 25


def check_nonce(payload: dict[str, Any]) -> str | None:
    """The payload's nonce as a lookup key, or None. Create Message documents `nonce` as an
    integer or a string of at most 25 characters
    (https://discord.com/developers/docs/resources/message#create-message)."""
    nonce = payload.get("nonce")
    if nonce is None:
        return None
    if isinstance(nonce, bool) or not isinstance(nonce, int | str):
        raise SandboxError(
            400,
            50035,
            "Invalid Form Body",
            {
                "nonce": {
                    "_errors": [
                        {"code": "NONCE_TYPE_INVALID", "message": "Must be an integer or a string."}
                    ]
                }
            },
        )
    if isinstance(nonce, str) and len(nonce) > NONCE_MAX_LEN:
        raise SandboxError(
            400,
            50035,
            "Invalid Form Body",
            {
                "nonce": {
                    "_errors": [
                        {
                            "code": "BASE_TYPE_MAX_LENGTH",
                            "message": f"Must be {NONCE_MAX_LEN} or fewer in length.",
                        }
                    ]
                }
            },
        )
    return str(nonce)


def enforced_nonce_hit(
    state: DiscordState, channel: Channel, author_id: str, payload: dict[str, Any]
) -> Message | None:
    """With `enforce_nonce: true`, "the nonce will be checked for uniqueness in the past few
    minutes. If another message was created by the same author with the same nonce, that
    message will be returned and no new message will be created." (Create Message, link
    above.) The sandbox keys it by author and channel and keeps it `nonce_window_s`."""
    nonce = check_nonce(payload)
    if nonce is None or payload.get("enforce_nonce") is not True:
        return None
    seen = state.nonces.get((author_id, channel.id, nonce))
    if seen is None or time.monotonic() - seen[1] > state.config.nonce_window_s:
        return None
    msg = state.messages.get(seen[0])
    return msg if msg is not None and not msg.deleted else None


def remember_nonce(state: DiscordState, msg: Message) -> None:
    if msg.nonce is None:
        return
    now = time.monotonic()
    window = state.config.nonce_window_s
    if len(state.nonces) > 10_000:  # forget the expired ones now and then
        for key in [k for k, (_, at) in state.nonces.items() if now - at > window]:
            del state.nonces[key]
    state.nonces[(msg.author_id, msg.channel_id, str(msg.nonce))] = (msg.id, now)


def create_message(
    state: DiscordState,
    channel: Channel,
    author_id: str,
    payload: dict[str, Any],
    files: dict[int, Attachment],
    **extra: Any,
) -> Message:
    fields = message_fields(payload, files)
    fields.update(extra)
    msg = state.add_message(channel, author_id, **fields)
    apply_mentions(state, msg, payload.get("allowed_mentions"))
    if not msg.ephemeral:
        announce(state, msg, "MESSAGE_CREATE")
    return msg


def edit_message(
    state: DiscordState, msg: Message, payload: dict[str, Any], files: dict[int, Attachment]
) -> Message:
    """Apply an edit payload: only the fields present change."""
    if "content" in payload:
        msg.content = str(payload["content"] or "")
        apply_mentions(state, msg, payload.get("allowed_mentions"))
    if "embeds" in payload:
        msg.embeds = list(payload["embeds"] or [])
    elif "embed" in payload:
        msg.embeds = [payload["embed"]] if payload["embed"] else []
    if "components" in payload:
        msg.components = list(payload["components"] or [])
    if "flags" in payload and payload["flags"] is not None:
        keep = msg.flags & 64
        msg.flags = (int(payload["flags"]) & ALLOWED_FLAGS & ~64) | keep
    if "attachments" in payload:
        keep_ids = {str(a.get("id")) for a in payload["attachments"] or []}
        msg.attachments = [a for a in msg.attachments if a.id in keep_ids]
    msg.attachments.extend(files[k] for k in sorted(files))
    msg.flags &= ~128  # editing a deferred reply clears LOADING
    msg.edited = time.time()
    if not msg.ephemeral:
        announce(state, msg, "MESSAGE_UPDATE")
    return msg


def delete_message(state: DiscordState, msg: Message) -> None:
    msg.deleted = True
    if not msg.ephemeral:
        data = {"id": msg.id, "channel_id": msg.channel_id}
        if msg.guild_id:
            data["guild_id"] = msg.guild_id
        _to_viewers(state, msg, "MESSAGE_DELETE", data, data)


def announce(state: DiscordState, msg: Message, event: str) -> None:
    """Dispatch MESSAGE_CREATE/UPDATE to every bot that can see the channel."""
    full = payloads.message(state, msg)
    if msg.nonce is not None and event == "MESSAGE_CREATE":
        full["nonce"] = msg.nonce
    if msg.guild_id:
        guild = state.guilds[msg.guild_id]
        member = guild.members.get(msg.author_id)
        if member is not None:
            full["member"] = {
                k: v for k, v in payloads.member(state, guild, member).items() if k != "user"
            }
    stripped = dict(full, content="", embeds=[], attachments=[], components=[])
    _to_viewers(state, msg, event, full, stripped)


def _to_viewers(
    state: DiscordState, msg: Message, event: str, data: dict[str, Any], stripped: dict[str, Any]
) -> None:
    channel = state.channels[msg.channel_id]
    if state.hub is None:
        return
    if channel.guild_id:
        apps = state.guilds[channel.guild_id].bots
        intent = INTENT_GUILD_MESSAGES
    else:
        apps = [b.application_id for b in map(state.bot_by_user, channel.recipients) if b]
        intent = INTENT_DIRECT_MESSAGES
    for app_id in apps:
        own = state.bots[app_id].user_id == msg.author_id
        state.hub.dispatch(app_id, event, data, intent=intent, stripped=None if own else stripped)
