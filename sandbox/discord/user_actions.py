"""Control routes a simulated human uses: run a slash command, click, select, submit a modal."""

from __future__ import annotations

import base64
import binascii
import mimetypes
from typing import Any

from aiohttp import web

from sandbox.discord import payloads
from sandbox.discord.http_util import json_response, state_of
from sandbox.discord.interactions import dm_or_guild_channel, start
from sandbox.discord.models import Attachment, BotApp, Guild
from sandbox.discord.state import DiscordState, SandboxError

APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 2, 3, 4, 5
ATTACHMENT_OPTION = 11
UPLOAD_LIMIT = 10 * 1024 * 1024  # the `attachment_size_limit` every interaction announces
_CONVERT = {4: int, 10: float, 5: bool, 3: str}


def bad(msg: str) -> SandboxError:
    return SandboxError(400, 0, msg)


def _offered(cmd: dict[str, Any], guild_id: str | None) -> bool:
    """Whether Discord offers a global command here: only in the interaction contexts it
    lists (0 guild, 1 bot DM; all of them when absent), and not in DMs with the legacy
    `dm_permission: false`. Guild commands exist only in their guild (they are looked up
    there only). https://discord.com/developers/docs/interactions/application-commands#interaction-contexts"""
    contexts = cmd.get("contexts")
    if contexts is not None and (0 if guild_id else 1) not in contexts:
        return False
    return bool(guild_id) or cmd.get("dm_permission") is not False


def _find_command(app: BotApp, name: str, guild_id: str | None) -> dict[str, Any]:
    pools = [app.guild_commands.get(guild_id, {})] if guild_id else []
    pools.append(app.commands)
    for pool in pools:
        for cmd in pool.values():
            if (
                cmd["name"] == name
                and cmd["type"] == 1
                and (cmd.get("guild_id") or _offered(cmd, guild_id))
            ):
                return cmd
    where = f"guild {guild_id}" if guild_id else "DMs"
    raise SandboxError(
        404, 10063, f"Unknown application command {name!r} (not registered for {where})"
    )


def _resolve(
    state: DiscordState,
    guild: Guild | None,
    otype: int,
    value: Any,
    resolved: dict[str, dict[str, Any]],
) -> str:
    value = str(value)
    if otype == 6:
        resolved.setdefault("users", {})[value] = payloads.user(state.user(value))
        if guild and value in guild.members:
            member = payloads.member(state, guild, guild.members[value], perms=True)
            member.pop("user")
            resolved.setdefault("members", {})[value] = member
    elif otype == 7:
        ch = payloads.channel(state, state.channel(value))
        resolved.setdefault("channels", {})[value] = dict(ch, permissions=str((1 << 41) - 1))
    elif otype == 8:
        if guild is None or value not in guild.roles:
            raise bad(f"unknown role {value}")
        resolved.setdefault("roles", {})[value] = payloads.role(guild.roles[value])
    return value


def _upload(state: DiscordState, value: Any, resolved: dict[str, dict[str, Any]]) -> str:
    """An attachment option: `{filename, data_b64 | content, content_type?}` uploads a file
    (kept in `state.uploads`), a string is the id of an earlier upload. Like Discord, the value
    is the attachment id and the file itself goes in `resolved.attachments`."""
    if isinstance(value, dict):
        filename = str(value.get("filename") or "")
        if not filename:
            raise bad("an attachment option needs a filename")
        try:
            data = (
                base64.b64decode(value["data_b64"], validate=True)
                if "data_b64" in value
                else str(value.get("content", "")).encode()
            )
        except (binascii.Error, ValueError):
            raise bad("data_b64 is not valid base64") from None
        if len(data) > UPLOAD_LIMIT:
            raise bad(f"attachment larger than {UPLOAD_LIMIT} bytes")
        ctype = value.get("content_type") or _content_type(filename)
        att = Attachment(state.snowflake(), filename, data, ctype)
        state.uploads[att.id] = att
    else:
        att = state.attachment(str(value))
    resolved.setdefault("attachments", {})[att.id] = dict(
        payloads.attachment(state, att), ephemeral=True
    )
    return att.id


def _content_type(filename: str) -> str:
    """What Discord infers from the name: text files get a charset, unknown ones nothing more
    specific than octet-stream."""
    guessed = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    return f"{guessed}; charset=utf-8" if guessed.startswith("text/") else guessed


def _options(
    state: DiscordState,
    guild: Guild | None,
    defs: list[dict[str, Any]],
    given: dict[str, Any],
    resolved: dict[str, dict[str, Any]],
) -> list[dict[str, Any]]:
    by_name = {d["name"]: d for d in defs}
    out = []
    for name, value in given.items():
        d = by_name.get(name)
        if d is None:
            raise bad(f"unknown option {name!r}; command options: {sorted(by_name)}")
        otype = int(d["type"])
        if otype in (1, 2):
            out.append(
                {
                    "name": name,
                    "type": otype,
                    "options": _options(
                        state, guild, d.get("options") or [], value or {}, resolved
                    ),
                }
            )
            continue
        if otype in (6, 7, 8, 9):
            value = _resolve(state, guild, 6 if otype == 9 else otype, value, resolved)
        elif otype == ATTACHMENT_OPTION:
            value = _upload(state, value, resolved)
        else:
            value = _CONVERT.get(otype, str)(value)
        choices = [c["value"] for c in d.get("choices") or []]
        if choices and value not in choices:
            raise bad(f"option {name!r} must be one of {choices}")
        out.append({"name": name, "type": otype, "value": value})
    missing = [
        d["name"]
        for d in defs
        if d.get("required") and d["name"] not in given and int(d["type"]) not in (1, 2)
    ]
    if missing:
        raise bad(f"missing required options: {missing}")
    return out


def _context(state: DiscordState, body: dict[str, Any], app: BotApp):
    user = state.user(body["user_id"])
    guild_id = body.get("guild_id")
    guild = state.guild(guild_id) if guild_id else None
    if guild is not None:
        if user.id not in guild.members:
            raise bad("user is not a member of that guild")
        if app.application_id not in guild.bots:
            raise bad("bot is not in that guild")
        channel_id = body.get("channel_id") or guild.channels[0]
        if state.channel(channel_id).guild_id != guild.id:
            raise bad("channel is not in that guild")
    else:
        channel_id = body.get("channel_id")
    channel = dm_or_guild_channel(state, app, user.id, channel_id)
    return user, guild, channel


async def slash(request: web.Request) -> web.Response:
    """{application_id, user_id, guild_id?, channel_id?, name, options:{}|[], locale?}"""
    state = state_of(request)
    body = await request.json()
    app = state.bot(body["application_id"])
    user, guild, channel = _context(state, body, app)
    cmd = _find_command(app, body["name"], guild.id if guild else None)
    given = body.get("options") or {}
    resolved: dict[str, dict[str, Any]] = {}
    if isinstance(given, list):
        options = given
    else:
        options = _options(state, guild, cmd.get("options") or [], given, resolved)
    data: dict[str, Any] = {"id": cmd["id"], "name": cmd["name"], "type": 1, "options": options}
    if resolved:
        data["resolved"] = resolved
    if cmd.get("guild_id"):
        data["guild_id"] = cmd["guild_id"]
    inter = start(
        state,
        app,
        APPLICATION_COMMAND,
        user.id,
        channel,
        data,
        locale=body.get("locale") or user.locale,
    )
    return json_response({"interaction_id": inter.id}, 201)


def _walk(components: list[dict[str, Any]]):
    for c in components or []:
        yield c
        yield from _walk(c.get("components") or [])
        for key in ("component", "accessory"):
            if isinstance(c.get(key), dict):
                yield from _walk([c[key]])


async def component(request: web.Request) -> web.Response:
    """{user_id, message_id, custom_id, values?, locale?}: click a button / pick a select."""
    state = state_of(request)
    body = await request.json()
    user = state.user(body["user_id"])
    msg = state.messages.get(str(body["message_id"]))
    if msg is None or msg.deleted or (msg.visible_to and msg.visible_to != user.id):
        raise SandboxError(404, 10008, "Unknown Message")
    app = state.bots.get(msg.application_id or "") or state.bot_by_user(msg.author_id)
    if app is None:
        raise bad("message was not sent by a sandbox bot")
    comp = next((c for c in _walk(msg.components) if c.get("custom_id") == body["custom_id"]), None)
    if comp is None:
        raise bad(f"no component with custom_id {body['custom_id']!r} on that message")
    if comp.get("disabled"):
        raise bad("that component is disabled")
    data: dict[str, Any] = {"custom_id": comp["custom_id"], "component_type": comp["type"]}
    if comp["type"] != 2:
        data["values"] = [str(v) for v in body.get("values") or []]
    if msg.guild_id and user.id not in state.guilds[msg.guild_id].members:
        raise bad("user is not a member of that guild")
    channel = state.channels[msg.channel_id]
    inter = start(
        state,
        app,
        MESSAGE_COMPONENT,
        user.id,
        channel,
        data,
        locale=body.get("locale") or user.locale,
        message_id=msg.id,
    )
    return json_response({"interaction_id": inter.id}, 201)


def _fill(components: list[dict[str, Any]], values: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for c in components:
        if c.get("type") == 1:
            out.append({"type": 1, "components": _fill(c.get("components") or [], values)})
        elif c.get("type") == 18 and isinstance(c.get("component"), dict):
            out.append({"type": 18, "component": _fill([c["component"]], values)[0]})
        elif c.get("type") == 10:
            out.append({"type": 10, "id": c.get("id", 0)})
        else:
            cid = c.get("custom_id")
            item: dict[str, Any] = {"type": c["type"], "custom_id": cid}
            if c["type"] == 4:
                item["value"] = str(values.get(cid, c.get("value") or ""))
            else:
                item["values"] = [str(v) for v in values.get(cid, [])]
            out.append(item)
    return out


async def modal_submit(request: web.Request) -> web.Response:
    """{user_id, interaction_id (the one answered with a modal), values:{custom_id: value}}"""
    state = state_of(request)
    body = await request.json()
    opener = state.interactions.get(str(body["interaction_id"]))
    if opener is None or opener.modal is None:
        raise bad("that interaction did not open a modal")
    user = state.user(body.get("user_id") or opener.user_id)
    modal = opener.modal
    data = {
        "custom_id": modal["custom_id"],
        "components": _fill(modal.get("components") or [], body.get("values") or {}),
    }
    app = state.bots[opener.application_id]
    channel = state.channels[opener.channel_id]
    inter = start(
        state,
        app,
        MODAL_SUBMIT,
        user.id,
        channel,
        data,
        locale=body.get("locale") or opener.locale,
        message_id=opener.message_id,
    )
    return json_response({"interaction_id": inter.id}, 201)


ROUTES = [
    ("POST", "/_sandbox/interactions/slash", slash),
    ("POST", "/_sandbox/interactions/component", component),
    ("POST", "/_sandbox/interactions/modal", modal_submit),
]
