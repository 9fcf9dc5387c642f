"""Shared pieces of the control API: reading a JSON body, intents by name, the bot and guild
views the control endpoints answer with."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sandbox.discord import payloads
from sandbox.discord.models import (
    INTENT_NAMES,
    BotApp,
    Guild,
)
from sandbox.discord.state import DiscordState, SandboxError


async def _json(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    body = await request.json()
    if not isinstance(body, dict):
        raise SandboxError(400, 0, "expected a JSON object")
    return body


def _intents(names: list[str] | int | None) -> int:
    if isinstance(names, int):
        return names
    return sum(INTENT_NAMES[n] for n in names or [])


def bot_view(state: DiscordState, app: BotApp) -> dict[str, Any]:
    s, lim = app.stats, app.session_limit
    lim.refresh()
    return {
        "application_id": app.application_id,
        "name": app.name,
        "token": app.token,
        "bot_user_id": app.user_id,
        "owner_id": app.owner_id,
        "enabled_intents": app.enabled_intents,
        "bot_public": app.bot_public,
        "identify_count": s.identify_count,
        "resume_count": s.resume_count,
        "login_count": s.login_count,
        "open_connections": state.hub.open_count(app.application_id) if state.hub else 0,
        # the intents each valid gateway session of the bot was identified with
        "session_intents": sorted(
            s.intents
            for s in (state.hub.sessions.values() if state.hub else ())
            if s.app.application_id == app.application_id and s.valid
        ),
        "total_connections": s.total_connections,
        "last_close_code": s.last_close_code,
        "replayed_events": s.replayed_events,
        "invalid_sessions": s.invalid_sessions,
        "session_start_limit": {
            "total": lim.total,
            "remaining": lim.remaining,
            "reset_after": lim.reset_after(),
            "max_concurrency": lim.max_concurrency,
        },
        "guilds": [g.id for g in state.bot_guilds(app)],
        "faults": {
            "invalid_token": app.faults.invalid_token,
            "no_ready": app.faults.no_ready,
            "gateway_auth_fail": app.faults.gateway_auth_fail,
            "delay_ms": app.faults.delay_ms,
            "refuse_resume": app.faults.refuse_resume,
            "resume_delay_ms": app.faults.resume_delay_ms,
            "dms_closed": sorted(app.faults.dms_closed),
            "missing_permissions": sorted(app.faults.missing_permissions),
            "rules": [vars(r) for r in app.faults.rules],
        },
    }


def guild_view(state: DiscordState, guild: Guild) -> dict[str, Any]:
    return dict(payloads.guild(state, guild, full=True), bots=list(guild.bots))


# ---- world building ----------------------------------------------------------------
