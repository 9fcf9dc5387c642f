"""What the store's bot sees in Discord, read with the bot's token for the onboarding pickers
and the permission check.

Endpoints (Discord API v10, bot token):
* `GET /users/@me/guilds` — the guilds the bot is in
  (https://discord.com/developers/docs/resources/user#get-current-user-guilds);
* `GET /guilds/{id}` — `owner_id` (https://discord.com/developers/docs/resources/guild#get-guild);
* `GET /guilds/{id}/channels` — channels with their `permission_overwrites`
  (https://discord.com/developers/docs/resources/guild#get-guild-channels);
* `GET /guilds/{id}/roles` (https://discord.com/developers/docs/resources/guild#get-guild-roles);
* `GET /guilds/{id}/members/{user_id}` — the bot's (or the seller's) roles; REST needs no
  privileged intent for one member
  (https://discord.com/developers/docs/resources/guild#get-guild-member).
A 429 carries `retry_after` (seconds) in its JSON body and `Retry-After` in its headers
(https://discord.com/developers/docs/topics/rate-limits#exceeding-a-rate-limit): we wait that
long and retry, a bounded number of times. Answers are cached per bot for a short while, so
re-rendering a page does not spend the bot's 50 requests/s; the "check again" button skips the
cache.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass
from typing import Any

import httpx

from core.settings import Settings
from shop.bot_requirements import ChannelInfo, GuildSnapshot
from shop.discord_perms import Overwrite, Role
from web.portal.discord_api import TIMEOUT, DiscordError, InvalidBotToken

CACHE_TTL_S = 30.0
CACHE_MAX = 2000
MAX_RETRIES = 2
MAX_WAIT_S = 5.0  # a longer rate limit means "use the typed-id fallback", not a hung page
TEXT_CHANNEL_TYPES = (0, 5)  # GUILD_TEXT, GUILD_ANNOUNCEMENT
GUILD_LIST_LIMIT = 200

# (instance id, digest of the token, path) -> (monotonic expiry, answer): a replaced token
# (another bot) never sees the old bot's answers.
_cache: dict[tuple[int, str, str], tuple[float, Any]] = {}


class NotInGuild(DiscordError):
    """The bot is not in that guild (Discord answered 403 or 404)."""

    key = "onb.error.not_in_guild"


@dataclass(frozen=True)
class GuildChoice:
    id: str
    name: str


@dataclass(frozen=True)
class GuildView:
    """The store's server as the pickers show it, plus the snapshot the check needs."""

    snapshot: GuildSnapshot
    name: str
    text_channels: list[ChannelInfo]
    roles: list[Role]  # assignable: not @everyone, not a bot's managed role; highest first
    role_names: dict[str, str]


class BotReader:
    """Reads with one bot's token; `cache_id` (the instance id) keeps stores' caches apart."""

    def __init__(self, settings: Settings, token: str, cache_id: int, *, fresh: bool = False):
        self.settings = settings
        self.token = token
        self.cache_id = cache_id
        self.fresh = fresh
        self._digest = hashlib.sha256(token.encode()).hexdigest()[:16]

    async def get(self, path: str, *, not_found: type[DiscordError] = NotInGuild) -> Any:
        key = (self.cache_id, self._digest, path)
        hit = _cache.get(key)
        now = time.monotonic()
        if hit is not None and hit[0] > now and not self.fresh:
            return hit[1]
        data = await self._fetch(path, not_found)
        if len(_cache) >= CACHE_MAX:
            for stale in [k for k, (exp, _) in _cache.items() if exp <= now] or list(_cache)[:100]:
                _cache.pop(stale, None)
        _cache[key] = (now + CACHE_TTL_S, data)
        return data

    async def _fetch(self, path: str, not_found: type[DiscordError]) -> Any:
        url = f"{self.settings.discord_api_base}{path}"
        headers = {"Authorization": f"Bot {self.token}"}
        try:
            async with httpx.AsyncClient(timeout=TIMEOUT) as http:
                for _attempt in range(MAX_RETRIES + 1):
                    resp = await http.get(url, headers=headers)
                    if resp.status_code != 429:
                        break
                    wait = retry_after(resp)
                    if wait > MAX_WAIT_S:
                        break
                    await asyncio.sleep(wait)
        except httpx.HTTPError as exc:
            raise DiscordError(f"{path} unreachable: {type(exc).__name__}") from None
        if resp.status_code == 401:
            raise InvalidBotToken(f"{path} answered 401")
        if resp.status_code in (403, 404):
            raise not_found(f"{path} answered {resp.status_code}")
        if resp.status_code != 200:
            raise DiscordError(f"{path} answered {resp.status_code}")
        return resp.json()

    async def guilds(self) -> list[GuildChoice]:
        data = await self.get(f"/users/@me/guilds?limit={GUILD_LIST_LIMIT}", not_found=DiscordError)
        return [GuildChoice(str(g["id"]), str(g.get("name") or g["id"])) for g in data]

    async def member_roles(self, guild_id: str, user_id: str) -> list[str] | None:
        """A member's role ids; None when the user is not in the guild."""
        try:
            data = await self.get(f"/guilds/{guild_id}/members/{user_id}", not_found=_NoMember)
        except _NoMember:
            return None
        return [str(r) for r in data.get("roles") or []]

    async def roles(self, guild_id: str) -> tuple[dict[str, Role], dict[str, str]]:
        """The guild's roles by id, and their names."""
        raw = await self.get(f"/guilds/{guild_id}/roles")
        roles = {str(r["id"]): _role(r) for r in raw}
        return roles, {str(r["id"]): str(r.get("name") or r["id"]) for r in raw}

    async def owner_and_name(self, guild_id: str) -> tuple[str, str]:
        info = await self.get(f"/guilds/{guild_id}")
        return str(info.get("owner_id") or ""), str(info.get("name") or guild_id)

    async def guild(self, guild_id: str, bot_user_id: str) -> GuildView:
        owner_id, name = await self.owner_and_name(guild_id)
        roles, role_names = await self.roles(guild_id)
        raw_channels = await self.get(f"/guilds/{guild_id}/channels")
        bot_roles = await self.member_roles(guild_id, bot_user_id)
        if bot_roles is None:
            raise NotInGuild("the bot is not a member")
        channels = {str(c["id"]): _channel(c) for c in raw_channels}
        snapshot = GuildSnapshot(
            guild_id=guild_id,
            owner_id=owner_id,
            roles=roles,
            channels=channels,
            bot_user_id=bot_user_id,
            bot_roles=tuple(bot_roles),
        )
        text = [c for c in channels.values() if c.type in TEXT_CHANNEL_TYPES]
        text.sort(key=lambda c: c.name.lower())
        assignable = [r for r in roles.values() if r.id != guild_id and not r.managed]
        assignable.sort(key=lambda r: -r.position)
        return GuildView(snapshot, name, text, assignable, role_names)


class _NoMember(DiscordError):
    pass


def retry_after(resp: httpx.Response) -> float:
    """Seconds to wait from a 429: the body's `retry_after`, else the `Retry-After` header."""
    try:
        body = resp.json()
        value = float(body.get("retry_after"))
    except (ValueError, TypeError, AttributeError):
        try:
            value = float(resp.headers.get("Retry-After", "1"))
        except ValueError:
            value = 1.0
    return max(0.0, value)


def forget(cache_id: int) -> None:
    """Drop one bot's cached answers (the "check again" button)."""
    for key in [k for k in _cache if k[0] == cache_id]:
        _cache.pop(key, None)


def _role(raw: dict[str, Any]) -> Role:
    return Role(
        id=str(raw["id"]),
        permissions=int(raw.get("permissions") or 0),
        position=int(raw.get("position") or 0),
        managed=bool(raw.get("managed")),
    )


def _channel(raw: dict[str, Any]) -> ChannelInfo:
    overwrites = tuple(
        Overwrite(str(o["id"]), int(o["type"]), int(o.get("allow") or 0), int(o.get("deny") or 0))
        for o in raw.get("permission_overwrites") or []
    )
    return ChannelInfo(
        str(raw["id"]), str(raw.get("name") or raw["id"]), int(raw["type"]), overwrites
    )
