"""Threads as Discord documents them: who may start a private thread, add members, post in,
archive and lock it; and what a bot without the Message Content intent reads back.

- Start Thread without Message: a private thread (type 12) needs Create Private Threads in the
  parent channel, else 50013; an unknown parent is 10003
  (https://discord.com/developers/docs/resources/channel#start-thread-without-message).
- Add Thread Member: the thread must not be archived, else 50083
  (https://discord.com/developers/docs/resources/channel#add-thread-member).
- Modify Channel (thread): `archived`, `locked`, `auto_archive_duration`, `invitable`, `name`;
  locking, or unarchiving a locked thread, needs Manage Threads; the thread's creator may
  archive it; anyone else needs Manage Threads (50013)
  (https://discord.com/developers/docs/resources/channel#modify-channel-json-params-thread).
- Create Message in an archived thread: an unlocked one is unarchived by the message; a locked
  one refuses it (50083) unless the author has Manage Threads
  (https://discord.com/developers/docs/topics/threads#archiving-and-unarchiving).
- A private thread is seen by its members and by those with Manage Threads; mentioning a role
  in it adds the role's members who can see the parent channel
  (https://discord.com/developers/docs/topics/threads#private-threads).
- Without the Message Content intent a bot reads other people's messages with empty content,
  embeds, attachments and components, except in DMs and messages that mention it
  (https://discord.com/developers/docs/topics/gateway#message-content-intent).
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from sandbox.discord import payloads
from sandbox.discord.http_util import json_response, read_body, require_bot, state_of
from sandbox.discord.models import (
    CREATE_PRIVATE_THREADS,
    DM,
    INTENT_MESSAGE_CONTENT,
    MANAGE_THREADS,
    PRIVATE_THREAD,
    VIEW_CHANNEL,
    BotApp,
    Channel,
    Message,
)
from sandbox.discord.state import DiscordState, SandboxError

THREAD_TYPES = (10, 11, 12)
ARCHIVED = SandboxError(400, 50083, "Operation not allowed on an archived thread")
MISSING_PERMISSIONS = SandboxError(403, 50013, "Missing Permissions")
_ROLE_MENTION = re.compile(r"<@&([0-9]+)>")


def _perms_in_parent(state: DiscordState, thread: Channel, user_id: str) -> int:
    guild = state.guilds[thread.guild_id or ""]
    parent = state.channels.get(thread.parent_id or "", thread)
    return state.channel_permissions(guild, parent, user_id)


def check_start(state: DiscordState, app: BotApp, parent: Channel, kind: int) -> None:
    """Start Thread without Message: a private thread needs Create Private Threads."""
    guild = state.guilds[parent.guild_id or ""]
    perms = state.channel_permissions(guild, parent, app.user_id)
    if kind == PRIVATE_THREAD and not perms & CREATE_PRIVATE_THREADS:
        raise MISSING_PERMISSIONS


def check_add_member(thread: Channel) -> None:
    if thread.archived:
        raise ARCHIVED


def before_post(state: DiscordState, thread: Channel, author_id: str) -> None:
    """Create Message in a thread: an archived one is unarchived, unless it is locked."""
    if thread.type not in THREAD_TYPES or not thread.archived:
        return
    if thread.locked and not _perms_in_parent(state, thread, author_id) & MANAGE_THREADS:
        raise ARCHIVED
    thread.archived = False


def can_see(state: DiscordState, channel: Channel, user_id: str) -> bool:
    """Who may read (and so post in) a guild channel: View Channel with the overwrites; a
    private thread, only its members and those with Manage Threads."""
    if channel.guild_id is None:
        return True
    if channel.type == PRIVATE_THREAD:
        return user_id in channel.recipients or bool(
            _perms_in_parent(state, channel, user_id) & MANAGE_THREADS
        )
    if channel.type in THREAD_TYPES:
        return bool(_perms_in_parent(state, channel, user_id) & VIEW_CHANNEL)
    guild = state.guilds[channel.guild_id]
    return bool(state.channel_permissions(guild, channel, user_id) & VIEW_CHANNEL)


def add_mentioned_roles(state: DiscordState, thread: Channel, msg: Message) -> None:
    """A role mention that pings (allowed_mentions) adds the role's members to the thread."""
    if thread.type != PRIVATE_THREAD or thread.guild_id is None:
        return
    allowed = msg.allowed_mentions
    roles = set(_ROLE_MENTION.findall(msg.content))
    if allowed is not None:
        listed = {str(r) for r in allowed.get("roles") or []}
        roles = roles if "roles" in (allowed.get("parse") or []) else roles & listed
    guild = state.guilds[thread.guild_id]
    for member in guild.members.values():
        if roles & set(member.roles) and member.user_id not in thread.recipients:
            if _perms_in_parent(state, thread, member.user_id) & VIEW_CHANNEL:
                thread.recipients.append(member.user_id)


def as_read_by(app: BotApp, channel: Channel, msg: Message, data: dict[str, Any]) -> dict[str, Any]:
    """A message as the bot reads it back: stripped without the Message Content intent."""
    if (
        app.enabled_intents & INTENT_MESSAGE_CONTENT
        or channel.type == DM
        or msg.author_id == app.user_id
        or app.user_id in msg.mentions
    ):
        return data
    return dict(data, content="", embeds=[], attachments=[], components=[])


async def modify_channel(request: web.Request) -> web.Response:
    """PATCH /channels/{id}: the thread fields (archive, lock), with their permissions."""
    state = state_of(request)
    app = require_bot(request)
    channel = state.channel(request.match_info["channel_id"])
    if channel.guild_id is None or app.application_id not in state.guilds[channel.guild_id].bots:
        raise SandboxError(403, 50001, "Missing Access")
    body, _ = await read_body(request)
    if channel.type not in THREAD_TYPES:
        if {"archived", "locked", "invitable"} & set(body):
            raise SandboxError(400, 50024, "Cannot execute action on this channel type")
        if "name" in body:
            channel.name = str(body["name"])[:100]
        return json_response(payloads.channel(state, channel))
    manager = bool(_perms_in_parent(state, channel, app.user_id) & MANAGE_THREADS)
    locking = "locked" in body and bool(body["locked"]) != channel.locked
    unarchiving_locked = body.get("archived") is False and channel.locked
    archiving_others = bool(body.get("archived")) and channel.owner_id != app.user_id
    if not manager and (locking or unarchiving_locked or archiving_others):
        raise MISSING_PERMISSIONS
    if "locked" in body:
        channel.locked = bool(body["locked"])
    if "archived" in body:
        channel.archived = bool(body["archived"])
    if "name" in body:
        channel.name = str(body["name"])[:100]
    data = payloads.channel(state, channel)
    state.dispatch(app, "THREAD_UPDATE", data)
    return json_response(data)


ROUTES = [("PATCH", "/channels/{channel_id}", modify_channel)]
