"""Control API, faults: what a test breaks on purpose (tokens, READY, delays, closed DMs,
missing permissions, intents, request rules), the application's Public Bot switch, forced
gateway disconnects and the session start limit."""

from __future__ import annotations

import time

from aiohttp import web

from sandbox.discord.control_common import _intents, _json, bot_view
from sandbox.discord.http_util import json_response, state_of
from sandbox.discord.models import (
    FaultRule,
    Faults,
)


async def patch_faults(request: web.Request) -> web.Response:
    """Merge {invalid_token, no_ready, delay_ms, dms_closed, missing_permissions,
    privileged_intents, rules:[...]} into the bot's fault config."""
    state = state_of(request)
    app = state.bot(request.match_info["app_id"])
    body = await _json(request)
    f = app.faults
    f.invalid_token = bool(body.get("invalid_token", f.invalid_token))
    f.no_ready = bool(body.get("no_ready", f.no_ready))
    f.gateway_auth_fail = bool(body.get("gateway_auth_fail", f.gateway_auth_fail))
    f.delay_ms = int(body.get("delay_ms", f.delay_ms))
    f.refuse_resume = int(body.get("refuse_resume", f.refuse_resume))
    f.resume_delay_ms = int(body.get("resume_delay_ms", f.resume_delay_ms))
    if "dms_closed" in body:
        f.dms_closed = {str(u) for u in body["dms_closed"]}
    if "missing_permissions" in body:
        f.missing_permissions = {str(c) for c in body["missing_permissions"]}
    if "privileged_intents" in body:
        app.enabled_intents = _intents(body["privileged_intents"])
    for rule in body.get("rules") or []:
        f.rules.append(FaultRule(**rule))
    return json_response(bot_view(state, app))


async def patch_application(request: web.Request) -> web.Response:
    """{bot_public, flags}: what the owner switches in the Developer Portal (Bot → Public
    Bot) and application flags Discord sets itself (e.g. GATEWAY_GUILD_MEMBERS, 1 << 14, once
    a verified app is approved for the intent); the privileged intents are `privileged_intents`
    in the faults, and their *_LIMITED flags follow them (payloads.app_flags)."""
    state = state_of(request)
    app = state.bot(request.match_info["app_id"])
    body = await _json(request)
    if "bot_public" in body:
        app.bot_public = bool(body["bot_public"])
    if "flags" in body:
        app.flags = int(body["flags"])
    return json_response(bot_view(state, app))


async def clear_faults(request: web.Request) -> web.Response:
    state = state_of(request)
    app = state.bot(request.match_info["app_id"])
    app.faults = Faults()
    return json_response(bot_view(state, app))


async def disconnect(request: web.Request) -> web.Response:
    state = state_of(request)
    app = state.bot(request.match_info["app_id"])
    body = await _json(request)
    code = int(body.get("code", 4000))
    delay = int(body.get("resume_delay_ms", 0))
    closed = await state.hub.disconnect(app.application_id, code, delay) if state.hub else 0
    return json_response({"closed": closed, "code": code})


async def patch_session_limit(request: web.Request) -> web.Response:
    state = state_of(request)
    app = state.bot(request.match_info["app_id"])
    body = await _json(request)
    lim = app.session_limit
    lim.total = int(body.get("total", lim.total))
    lim.remaining = int(body.get("remaining", lim.remaining))
    if "reset_after_ms" in body:
        lim.reset_after_ms = int(body["reset_after_ms"])
        lim.window_start = time.monotonic()
    return json_response(bot_view(state, app))


P = "/_sandbox/bots/{app_id}"
FAULT_ROUTES = [
    ("PATCH", f"{P}/faults", patch_faults),
    ("PATCH", f"{P}/application", patch_application),
    ("DELETE", f"{P}/faults", clear_faults),
    ("POST", f"{P}/disconnect", disconnect),
    ("PATCH", f"{P}/session_start_limit", patch_session_limit),
]
