"""The portal's calls to Discord: OAuth2 login (authorization code) and bot-token validation.

Plain httpx against `DISCORD_OAUTH_BASE` / `DISCORD_API_BASE`, so the sandbox stands in for
Discord in tests. A token is only ever sent in the Authorization header, never logged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from core.errors import VitrineError
from core.settings import Settings
from shop.bot_requirements import INTENT_FLAGS

OAUTH_SCOPES = "identify"
# VIEW_CHANNEL | SEND_MESSAGES | EMBED_LINKS | ATTACH_FILES | READ_MESSAGE_HISTORY |
# MANAGE_ROLES (buyer role) | CREATE_PRIVATE_THREADS | SEND_MESSAGES_IN_THREADS
# (delivery fallback in a private thread when the buyer's DMs are closed): every feature on.
# The invite asks for what the store's features need (`shop.bot_requirements`).
BOT_PERMISSIONS = 268553216 | (1 << 36) | (1 << 38)
# Privileged intents the Vitrine worker needs today: none (slash commands and components
# only; Server Members is optional, `shop.bot_requirements.OPTIONAL_INTENTS`). Listed so the
# onboarding page and this constant change together.
REQUIRED_PRIVILEGED_INTENTS: tuple[str, ...] = ()
_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_\-.]{20,120}$")
TIMEOUT = httpx.Timeout(10.0, connect=5.0)


class DiscordError(VitrineError):
    """Discord answered something we cannot use; `key` is the i18n message for people."""

    key = "portal.discord.unavailable"


class InvalidBotToken(DiscordError):
    key = "portal.bot.invalid_token"


class NotABotToken(InvalidBotToken):
    key = "portal.bot.not_bot_token"


class OAuthFailed(DiscordError):
    key = "portal.login.failed"


@dataclass(frozen=True)
class BotIdentity:
    user_id: str
    username: str
    avatar: str | None
    application_id: str
    flags: int
    bot_public: bool = True  # anyone can add the bot to a server (Discord's default)

    def intents_enabled(self) -> dict[str, bool]:
        return {name: bool(self.flags & bits) for name, bits in INTENT_FLAGS.items()}


def redirect_uri(settings: Settings) -> str:
    return f"{settings.public_base_url}/auth/callback"


def authorize_url(settings: Settings, state: str) -> str:
    query = urlencode(
        {
            "response_type": "code",
            "client_id": settings.discord_client_id,
            "scope": OAUTH_SCOPES,
            "state": state,
            "prompt": "none",
            "redirect_uri": redirect_uri(settings),
        }
    )
    return f"{settings.discord_oauth_base}/oauth2/authorize?{query}"


def invite_url(
    settings: Settings,
    application_id: str,
    guild_id: str | None = None,
    permissions: int = BOT_PERMISSIONS,
) -> str:
    """The bot's invite link; `permissions` from `shop.bot_requirements.invite_permissions`."""
    params = {
        "client_id": application_id,
        "scope": "bot applications.commands",
        "permissions": str(permissions),
    }
    if guild_id:
        params.update(guild_id=guild_id, disable_guild_select="true")
    return f"{settings.discord_oauth_base}/oauth2/authorize?{urlencode(params)}"


def avatar_url(user_id: str | None, avatar: str | None) -> str | None:
    if not user_id or not avatar:
        return None
    return f"https://cdn.discordapp.com/avatars/{user_id}/{avatar}.png?size=128"


async def exchange_code(settings: Settings, code: str) -> str:
    """The access token for an authorization code; raises `OAuthFailed`."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri(settings),
    }
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT) as http:
            resp = await http.post(
                f"{settings.discord_oauth_base}/api/oauth2/token",
                data=form,
                auth=(settings.discord_client_id, settings.discord_client_secret),
            )
    except httpx.HTTPError as exc:
        raise DiscordError(f"token endpoint unreachable: {type(exc).__name__}") from None
    if resp.status_code != 200:
        raise OAuthFailed(f"token exchange answered {resp.status_code}")
    token = resp.json().get("access_token")
    if not token:
        raise OAuthFailed("token exchange without access_token")
    return str(token)


async def fetch_user(settings: Settings, access_token: str) -> dict[str, Any]:
    """`GET /users/@me` with the user's bearer token."""
    data = await _get(settings, "/users/@me", f"Bearer {access_token}", OAuthFailed)
    if not data.get("id") or data.get("bot"):
        raise OAuthFailed("not a user")
    return data


async def validate_bot_token(settings: Settings, token: str) -> BotIdentity:
    """Ask Discord who this bot token is; raises `InvalidBotToken` when it is not valid."""
    token = token.strip()
    if token.lower().startswith("bot "):
        token = token[4:].strip()
    if not _TOKEN_SHAPE.match(token) or token.count(".") != 2:
        raise InvalidBotToken("malformed token")
    me = await _get(settings, "/users/@me", f"Bot {token}", InvalidBotToken)
    if not me.get("bot"):
        raise NotABotToken("the token belongs to a user account")
    app = await _get(settings, "/applications/@me", f"Bot {token}", InvalidBotToken)
    return BotIdentity(
        user_id=str(me["id"]),
        username=str(me.get("username") or ""),
        avatar=me.get("avatar"),
        application_id=str(app.get("id") or ""),
        flags=int(app.get("flags") or 0),
        bot_public=bool(app.get("bot_public", True)),
    )


async def _get(
    settings: Settings, path: str, authorization: str, unauthorized: type[DiscordError]
) -> dict[str, Any]:
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT) as http:
            resp = await http.get(
                f"{settings.discord_api_base}{path}", headers={"Authorization": authorization}
            )
    except httpx.HTTPError as exc:
        raise DiscordError(f"{path} unreachable: {type(exc).__name__}") from None
    if resp.status_code in (401, 403):
        raise unauthorized(f"{path} answered {resp.status_code}")
    if resp.status_code != 200:
        raise DiscordError(f"{path} answered {resp.status_code}")
    data = resp.json()
    if not isinstance(data, dict):
        raise DiscordError(f"{path} answered a non-object")
    return data
