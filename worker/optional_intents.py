"""Privileged intents a worker asks for only when the seller enabled them.

An extension may declare `OPTIONAL_INTENTS = ("members",)`: better with it, fine without
(the storefront restores a rejoining buyer's roles on GUILD_MEMBER_ADD within seconds, else
at its hourly check). Asking Discord for a privileged intent the application has not enabled
closes the gateway with 4014 (a configuration error: the bot would stay offline), so before
its first connection the worker reads its application's `flags` (`GET /applications/@me`)
and asks for an optional intent only when one of its two flags is set: `GATEWAY_GUILD_MEMBERS`
(1 << 14, a verified app) or `GATEWAY_GUILD_MEMBERS_LIMITED` (1 << 15, the switch on the Bot
page of an app in under 100 servers); likewise presences and message content
(https://discord.com/developers/docs/resources/application#application-object-application-flags).

A RESUME carries no intents: the session keeps those it was identified with. A successor
that RESUMEs therefore takes the intents stored with the session (`worker.resume`) and reads
nothing, so the crash -> RESUMED path makes no extra request; a stored session is at most
`GATEWAY_SESSION_TTL` (10 min) old, so a fallback IDENTIFY uses flags that recent.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable

import disnake

from shop.bot_requirements import INTENT_FLAGS as FLAGS

log = logging.getLogger("worker.intents")


def declared(modules: Iterable[str]) -> tuple[str, ...]:
    """The optional intents the extensions declare (`OPTIONAL_INTENTS`), in order, once each."""
    names: dict[str, None] = {}
    for name in modules:
        for flag in getattr(importlib.import_module(name), "OPTIONAL_INTENTS", ()):
            if flag not in FLAGS:
                raise ValueError(f"{name}: optional intent {flag!r} is not a privileged one")
            names[flag] = None
    return tuple(names)


def enabled(optional: Iterable[str], app_flags: int) -> list[str]:
    """Which of `optional` the application's flags say are enabled."""
    return [name for name in optional if app_flags & FLAGS[name]]


def choose(
    required: disnake.Intents,
    optional: Iterable[str],
    app_flags: int | None,
    stored: int | None,
) -> disnake.Intents:
    """The intents to connect with: a stored session's own (a RESUME keeps them), else the
    required ones plus each optional one the flags enable (flags unread: none of them)."""
    if stored is not None:
        return disnake.Intents._from_value(stored | required.value)
    intents = disnake.Intents._from_value(required.value)
    for name in enabled(optional, app_flags or 0):
        setattr(intents, name, True)
    return intents


async def read_application(bot: disnake.Client) -> int | None:
    """The application's `flags`, or None when Discord did not answer (then the worker
    connects without its optional intents: no 4014, the fallbacks still run). The answer is
    kept as `bot.application_payload` for `worker.guild_scope` (its `bot_public`)."""
    try:
        app = await bot.http.request(disnake.http.Route("GET", "/applications/@me"))
    except (disnake.HTTPException, OSError) as exc:
        log.warning("could not read the application flags: %s", exc)
        return None
    bot.application_payload = app  # type: ignore[attr-defined]
    try:
        return int(app.get("flags") or 0)
    except (TypeError, ValueError):
        return None


async def settle(bot: disnake.Client, optional: tuple[str, ...], stored: int | None) -> None:
    """Set the bot's intents before it connects (after login: the HTTP client has the token)."""
    if not optional:
        return
    required = bot._connection._intents
    flags = None if stored is not None else await read_application(bot)
    intents = choose(required, optional, flags, stored)
    if intents.value != required.value:
        log.info("optional intents on: %s", ", ".join(n for n in optional if getattr(intents, n)))
    bot._connection._intents = intents
