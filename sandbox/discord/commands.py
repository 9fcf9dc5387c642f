"""Application command routes (global and guild), with ids like Discord assigns."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from sandbox.discord.http_util import json_response, no_content, read_body, require_bot, state_of
from sandbox.discord.messages import invalid_form
from sandbox.discord.models import BotApp
from sandbox.discord.state import DiscordState, SandboxError

_NAME_RE = re.compile(r"^[-_\w]{1,32}$")


def _target(request: web.Request) -> tuple[DiscordState, BotApp, dict[str, dict[str, Any]]]:
    state = state_of(request)
    app = require_bot(request)
    if request.match_info["app_id"] != app.application_id:
        raise SandboxError(403, 50001, "Missing Access")
    guild_id = request.match_info.get("guild_id")
    if guild_id is None:
        return state, app, app.commands
    guild = state.guild(guild_id)
    if app.application_id not in guild.bots:
        raise SandboxError(403, 50001, "Missing Access")
    return state, app, app.guild_commands.setdefault(guild.id, {})


# Locales Discord accepts as keys of `*_localizations` (the "Locales" reference table).
_LOCALES = frozenset(
    "id da de en-GB en-US es-ES es-419 fr hr it lt hu nl no pl pt-BR ro fi sv-SE vi tr cs el "
    "bg ru uk hi th zh-CN ja zh-TW ko".split()
)


def _check_localizations(data: dict[str, Any], ctype: int) -> None:
    """Localized names follow the name's rules and descriptions its length, per locale:
    https://discord.com/developers/docs/interactions/application-commands#localization
    (keys from https://discord.com/developers/docs/reference#locales)."""
    for locale, name in (data.get("name_localizations") or {}).items():
        if locale not in _LOCALES:
            raise invalid_form(f"name_localizations: invalid locale {locale!r}")
        if not _NAME_RE.match(name) or (ctype == 1 and name != name.lower()):
            raise invalid_form(f"name_localizations.{locale}: invalid command name {name!r}")
    for locale, text in (data.get("description_localizations") or {}).items():
        if locale not in _LOCALES:
            raise invalid_form(f"description_localizations: invalid locale {locale!r}")
        if ctype == 1 and not 1 <= len(text) <= 100:
            raise invalid_form(f"description_localizations.{locale}: 1 to 100 characters.")


def _build(
    state: DiscordState,
    app: BotApp,
    data: dict[str, Any],
    guild_id: str | None,
    existing: dict[str, Any] | None,
) -> dict[str, Any]:
    ctype = int(data.get("type") or 1)
    name = data.get("name") or ""
    if not _NAME_RE.match(name) or (ctype == 1 and name != name.lower()):
        raise invalid_form(f"name: invalid command name {name!r}")
    description = data.get("description") or ""
    if ctype == 1 and not 1 <= len(description) <= 100:
        raise invalid_form("description: Must be between 1 and 100 in length.")
    _check_localizations(data, ctype)
    cmd = {
        "id": existing["id"] if existing else state.snowflake(),
        "application_id": app.application_id,
        "version": state.snowflake(),
        "type": ctype,
        "name": name,
        "name_localizations": data.get("name_localizations"),
        "description": description if ctype == 1 else "",
        "description_localizations": data.get("description_localizations"),
        "options": data.get("options") or [],
        "default_member_permissions": data.get("default_member_permissions"),
        "dm_permission": data.get("dm_permission", True),
        "nsfw": bool(data.get("nsfw", False)),
        "integration_types": data.get("integration_types") or [0],
        "contexts": data.get("contexts"),
    }
    if guild_id:
        cmd["guild_id"] = guild_id
    return cmd


def _find(cmds: dict[str, dict[str, Any]], name: str, ctype: int) -> dict[str, Any] | None:
    return next((c for c in cmds.values() if c["name"] == name and c["type"] == ctype), None)


async def list_commands(request: web.Request) -> web.Response:
    _, _, cmds = _target(request)
    return json_response(list(cmds.values()))


async def bulk_overwrite(request: web.Request) -> web.Response:
    state, app, cmds = _target(request)
    body = await request.json()
    if not isinstance(body, list):
        raise invalid_form("expected an array of commands")
    guild_id = request.match_info.get("guild_id")
    new: dict[str, dict[str, Any]] = {}
    for data in body:
        cmd = _build(
            state,
            app,
            data,
            guild_id,
            _find(cmds, data.get("name", ""), int(data.get("type") or 1)),
        )
        new[cmd["id"]] = cmd
    cmds.clear()
    cmds.update(new)
    return json_response(list(new.values()))


async def upsert_command(request: web.Request) -> web.Response:
    state, app, cmds = _target(request)
    data, _ = await read_body(request)
    existing = _find(cmds, data.get("name", ""), int(data.get("type") or 1))
    cmd = _build(state, app, data, request.match_info.get("guild_id"), existing)
    cmds[cmd["id"]] = cmd
    return json_response(cmd, 200 if existing else 201)


def _one(cmds: dict[str, dict[str, Any]], cmd_id: str) -> dict[str, Any]:
    cmd = cmds.get(cmd_id)
    if cmd is None:
        raise SandboxError(404, 10063, "Unknown application command")
    return cmd


async def get_command(request: web.Request) -> web.Response:
    _, _, cmds = _target(request)
    return json_response(_one(cmds, request.match_info["cmd_id"]))


async def edit_command(request: web.Request) -> web.Response:
    state, app, cmds = _target(request)
    current = _one(cmds, request.match_info["cmd_id"])
    data, _ = await read_body(request)
    cmd = _build(state, app, {**current, **data}, request.match_info.get("guild_id"), current)
    cmds[cmd["id"]] = cmd
    return json_response(cmd)


async def delete_command(request: web.Request) -> web.Response:
    _, _, cmds = _target(request)
    _one(cmds, request.match_info["cmd_id"])
    del cmds[request.match_info["cmd_id"]]
    return no_content()


async def command_permissions(request: web.Request) -> web.Response:
    _target(request)
    return json_response([])


ROUTES = [
    ("GET", "/applications/{app_id}/commands", list_commands),
    ("PUT", "/applications/{app_id}/commands", bulk_overwrite),
    ("POST", "/applications/{app_id}/commands", upsert_command),
    ("GET", "/applications/{app_id}/commands/{cmd_id}", get_command),
    ("PATCH", "/applications/{app_id}/commands/{cmd_id}", edit_command),
    ("DELETE", "/applications/{app_id}/commands/{cmd_id}", delete_command),
    ("GET", "/applications/{app_id}/guilds/{guild_id}/commands/permissions", command_permissions),
    ("GET", "/applications/{app_id}/guilds/{guild_id}/commands", list_commands),
    ("PUT", "/applications/{app_id}/guilds/{guild_id}/commands", bulk_overwrite),
    ("POST", "/applications/{app_id}/guilds/{guild_id}/commands", upsert_command),
    ("GET", "/applications/{app_id}/guilds/{guild_id}/commands/{cmd_id}", get_command),
    ("PATCH", "/applications/{app_id}/guilds/{guild_id}/commands/{cmd_id}", edit_command),
    ("DELETE", "/applications/{app_id}/guilds/{guild_id}/commands/{cmd_id}", delete_command),
]
