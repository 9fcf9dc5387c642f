"""Async client for the Discord stand-in's control API, plus a buyer (human user) simulator.

    async with DiscordSandbox(sb.discord_base) as dc:
        bot = await dc.create_bot("Loja")
        guild = await dc.create_guild("Servidor", channels=["loja"], roles=["VIP"], bots=[bot])
        buyer = await dc.buyer("ana", guilds=[guild])
        reply = await (await buyer.slash(bot, guild, "loja", "comprar")).wait_reply()
        await (await buyer.click(reply.message, "buy:1")).wait_reply()
        dm = await buyer.wait_dm(lambda m: m.attachments)

Waits take `timeout=` seconds by design (hence the ASYNC109 noqa markers).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx

from sandbox.discord.client_buyer import Buyer
from sandbox.discord.client_types import (  # noqa: F401 - re-exported for callers
    Bot,
    GuildInfo,
    InteractionResult,
    InteractionTimeout,
    Msg,
    Reply,
    SandboxAPIError,
    _id,
    upload,
)

T = TypeVar("T")


class DiscordSandbox:
    """Control-API client. `base_url` is the sandbox root (e.g. http://127.0.0.1:8900)."""

    def __init__(
        self, base_url: str, *, poll_interval: float = 0.05, timeout: float = 10.0
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.poll_interval = poll_interval
        self.http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout)

    async def __aenter__(self) -> DiscordSandbox:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def call(self, method: str, path: str, **kw: Any) -> Any:
        resp = await self.http.request(method, path, **kw)
        body = (
            resp.json()
            if resp.headers.get("content-type", "").startswith("application/json")
            else resp.text
        )
        if resp.status_code >= 400:
            raise SandboxAPIError(resp.status_code, body)
        return body

    async def poll(
        self,
        fetch: Callable[[], Awaitable[Any]],
        pick: Callable[[Any], T | None],
        timeout: float,
        what: str,
    ) -> T:  # noqa: ASYNC109
        """Call fetch() until pick(result) is truthy; return that."""
        deadline = time.monotonic() + timeout
        while True:
            last = await fetch()
            found = pick(last)
            if found:
                return found
            if time.monotonic() >= deadline:
                raise InteractionTimeout(what, last)
            await asyncio.sleep(self.poll_interval)

    # ---- world building ----------------------------------------------------------
    async def create_bot(
        self,
        name: str = "SandboxBot",
        *,
        privileged_intents: list[str] | tuple[str, ...] = (),
        token: str | None = None,
    ) -> Bot:
        data = await self.call(
            "POST",
            "/_sandbox/bots",
            json={"name": name, "privileged_intents": list(privileged_intents), "token": token},
        )
        return Bot(data["application_id"], data["token"], data["bot_user_id"], data["name"])

    async def create_user(
        self, username: str, *, locale: str = "pt-BR", email: str | None = None
    ) -> dict[str, Any]:
        return await self.call(
            "POST", "/_sandbox/users", json={"username": username, "locale": locale, "email": email}
        )

    async def create_guild(
        self,
        name: str = "Sandbox Guild",
        *,
        owner_id: str | None = None,
        channels: list[str] | tuple[str, ...] = ("general",),
        roles: list[str] | tuple[str, ...] = (),
        bots: list[Any] = (),
        locale: str = "pt-BR",
    ) -> GuildInfo:  # type: ignore[assignment]
        data = await self.call(
            "POST",
            "/_sandbox/guilds",
            json={
                "name": name,
                "owner_id": owner_id,
                "locale": locale,
                "channels": [{"name": c} for c in channels],
                "roles": [{"name": r} for r in roles],
                "bots": [_id(b) for b in bots],
            },
        )
        return _guild_info(data)

    async def guild(self, guild_id: str) -> GuildInfo:
        return _guild_info(await self.call("GET", f"/_sandbox/guilds/{guild_id}"))

    async def add_bot_to_guild(
        self, guild: Any, bot: Any, permissions: int | None = None, added_by: str | None = None
    ) -> GuildInfo:
        """A user (`added_by`; None: the bot's owner) adds the bot; it gets GUILD_CREATE.
        A private bot (`set_bot_public(bot, False)`) refuses anyone but its owner."""
        body: dict[str, Any] = {"application_id": _id(bot)}
        if permissions is not None:
            body["permissions"] = permissions
        if added_by is not None:
            body["added_by"] = added_by
        return _guild_info(
            await self.call("POST", f"/_sandbox/guilds/{_id(guild)}/bots", json=body)
        )

    async def add_member(
        self, guild: Any, user_id: str, roles: list[str] | tuple[str, ...] = ()
    ) -> dict[str, Any]:
        return await self.call(
            "POST",
            f"/_sandbox/guilds/{_id(guild)}/members",
            json={"user_id": user_id, "roles": list(roles)},
        )

    async def remove_member(self, guild: Any, user_id: str) -> None:
        """The member leaves the guild (GUILD_MEMBER_REMOVE); their roles are gone."""
        await self.call("DELETE", f"/_sandbox/guilds/{_id(guild)}/members/{user_id}")

    async def buyer(
        self, username: str = "buyer", *, guilds: list[Any] = (), locale: str = "pt-BR"
    ) -> Buyer:  # type: ignore[assignment]
        """Create a human user, make it a member of `guilds`, return its simulator."""
        user = await self.create_user(username, locale=locale)
        for g in guilds:
            await self.add_member(g, user["id"])
        return Buyer(self, user, locale)

    async def create_oauth_app(
        self,
        redirect_uris: list[str],
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
    ) -> dict[str, Any]:
        return await self.call(
            "POST",
            "/_sandbox/oauth/apps",
            json={
                "redirect_uris": redirect_uris,
                "client_id": client_id,
                "client_secret": client_secret,
            },
        )

    async def configure(self, **config: Any) -> dict[str, Any]:
        return await self.call("PATCH", "/_sandbox/config", json=config)

    # ---- faults --------------------------------------------------------------------
    async def set_faults(self, bot: Any, **faults: Any) -> dict[str, Any]:
        """invalid_token, no_ready, delay_ms, dms_closed=[user ids],
        missing_permissions=[channel ids], privileged_intents=[names]."""
        return await self.call("PATCH", f"/_sandbox/bots/{_id(bot)}/faults", json=faults)

    async def add_fault_rule(
        self,
        bot: Any,
        kind: str,
        *,
        method: str = "*",
        path: str = "*",
        count: int = 1,
        **extra: Any,
    ) -> dict[str, Any]:
        """kind: "ratelimit" (retry_after, is_global), "error" (status), "delay" (delay_ms) or
        "hold" (the request takes effect, its answer is held until the client hangs up)."""
        rule = dict(kind=kind, method=method, path=path, count=count, **extra)
        return await self.set_faults(bot, rules=[rule])

    async def set_bot_public(self, bot: Any, public: bool) -> dict[str, Any]:
        """The owner switches "Public Bot" in the Developer Portal (`bot_public`)."""
        return await self.call(
            "PATCH", f"/_sandbox/bots/{_id(bot)}/application", json={"bot_public": public}
        )

    async def clear_faults(self, bot: Any) -> dict[str, Any]:
        return await self.call("DELETE", f"/_sandbox/bots/{_id(bot)}/faults")

    async def disconnect(self, bot: Any, code: int = 4000, *, resume_delay_ms: int = 0) -> int:
        """Close the bot's gateway connections with `code`; returns how many were closed.

        resume_delay_ms holds the next RESUME, so events sent meanwhile must be replayed."""
        data = await self.call(
            "POST",
            f"/_sandbox/bots/{_id(bot)}/disconnect",
            json={"code": code, "resume_delay_ms": resume_delay_ms},
        )
        return data["closed"]

    async def set_session_start_limit(self, bot: Any, **limit: int) -> dict[str, Any]:
        """total, remaining, reset_after_ms."""
        return await self.call(
            "PATCH", f"/_sandbox/bots/{_id(bot)}/session_start_limit", json=limit
        )

    # ---- observations --------------------------------------------------------------
    async def bot_info(self, bot: Any) -> dict[str, Any]:
        return await self.call("GET", f"/_sandbox/bots/{_id(bot)}")

    async def wait_bot(
        self,
        bot: Any,
        predicate: Callable[[dict[str, Any]], Any],
        timeout: float = 10.0,
        what: str = "bot state",
    ) -> dict[str, Any]:  # noqa: ASYNC109
        return await self.poll(
            lambda: self.bot_info(bot),
            lambda info: info if predicate(info) else None,
            timeout,
            what,
        )

    async def commands(self, bot: Any) -> list[dict[str, Any]]:
        return await self.call("GET", f"/_sandbox/bots/{_id(bot)}/commands")

    async def wait_commands(
        self,
        bot: Any,
        names: list[str],
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> list[dict[str, Any]]:
        def ok(cmds: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
            return cmds if set(names) <= {c["name"] for c in cmds} else None

        return await self.poll(lambda: self.commands(bot), ok, timeout, f"commands {names}")

    async def requests(
        self, bot: Any, method: str | None = None, path: str | None = None
    ) -> list[dict[str, Any]]:
        params = {k: v for k, v in (("method", method), ("path", path)) if v}
        return await self.call("GET", f"/_sandbox/bots/{_id(bot)}/requests", params=params)

    async def channel_messages(
        self, channel_id: str, *, include_ephemeral: bool = False
    ) -> list[Msg]:
        data = await self.call(
            "GET",
            f"/_sandbox/channels/{channel_id}/messages",
            params={"include_ephemeral": str(include_ephemeral).lower()},
        )
        return [Msg(m) for m in data]

    async def wait_channel_message(
        self, channel_id: str, predicate: Callable[[Msg], Any], timeout: float = 5.0
    ) -> Msg:  # noqa: ASYNC109
        def pick(msgs: list[Msg]) -> Msg | None:
            return next((m for m in msgs if predicate(m)), None)

        return await self.poll(
            lambda: self.channel_messages(channel_id), pick, timeout, "a channel message"
        )

    async def dms(self, user_id: str, bot: Any = None) -> list[Msg]:
        params = {"application_id": _id(bot)} if bot is not None else {}
        data = await self.call("GET", f"/_sandbox/users/{user_id}/dms", params=params)
        return [Msg(m) for m in data]

    async def interaction(self, interaction_id: str) -> dict[str, Any]:
        return await self.call("GET", f"/_sandbox/interactions/{interaction_id}")

    async def fetch_attachment(self, attachment: dict[str, Any]) -> bytes:
        resp = await self.http.get(attachment["url"])
        resp.raise_for_status()
        return resp.content

    async def health(self) -> dict[str, Any]:
        return await self.call("GET", "/_sandbox/health")

    # ---- permissions (what a server admin changes in Discord's UI) ----------------
    async def set_overwrite(
        self,
        channel_id: str,
        target_id: str,
        *,
        member: bool = False,
        allow: int = 0,
        deny: int = 0,
    ) -> None:
        """A channel permission overwrite for a role (or, `member=True`, a member)."""
        body = {"type": 1 if member else 0, "allow": allow, "deny": deny}
        await self.call(
            "PUT", f"/_sandbox/channels/{channel_id}/permissions/{target_id}", json=body
        )

    async def delete_overwrite(self, channel_id: str, target_id: str) -> None:
        await self.call("DELETE", f"/_sandbox/channels/{channel_id}/permissions/{target_id}")

    async def edit_role(self, guild: Any, role_id: str, **fields: Any) -> dict[str, Any]:
        """Change a role's `permissions`, `position` or `name`."""
        return await self.call(
            "PATCH", f"/_sandbox/guilds/{_id(guild)}/roles/{role_id}", json=fields
        )


def _guild_info(data: dict[str, Any]) -> GuildInfo:
    return GuildInfo(
        data["id"],
        data["name"],
        {c["name"]: c["id"] for c in data.get("channels", [])},
        {r["name"]: r["id"] for r in data.get("roles", [])},
        data,
    )
