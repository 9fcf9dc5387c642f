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
import base64
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

T = TypeVar("T")


class SandboxAPIError(RuntimeError):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"sandbox control API returned {status}: {body}")
        self.status, self.body = status, body


class InteractionTimeout(TimeoutError):
    """The user saw no (complete) response in time; `.record` is the last state."""

    def __init__(self, what: str, record: Any) -> None:
        super().__init__(f"timed out waiting for {what}; last state: {record}")
        self.record = record


def _id(obj: Any) -> str:
    for attr in ("application_id", "id"):
        if hasattr(obj, attr):
            return str(getattr(obj, attr))
    if isinstance(obj, dict):
        return str(obj.get("application_id") or obj["id"])
    return str(obj)


def upload(filename: str, data: bytes | str, content_type: str | None = None) -> dict[str, Any]:
    """The value of an attachment option (type 11) in `Buyer.slash`: the user picks this file.
    The bot gets it as Discord sends it (`resolved.attachments`, a URL it can download)."""
    raw = data.encode() if isinstance(data, str) else data
    out: dict[str, Any] = {"filename": filename, "data_b64": base64.b64encode(raw).decode()}
    if content_type:
        out["content_type"] = content_type
    return out


class Msg(dict):
    """A message as the sandbox stored it (Discord JSON) with convenience accessors."""

    id = property(lambda self: self["id"])
    channel_id = property(lambda self: self["channel_id"])
    content = property(lambda self: self.get("content", ""))
    embeds = property(lambda self: self.get("embeds", []))
    components = property(lambda self: self.get("components", []))
    attachments = property(lambda self: self.get("attachments", []))
    author_id = property(lambda self: self["author"]["id"])
    ephemeral = property(lambda self: bool(self.get("flags", 0) & 64))

    def custom_ids(self) -> list[str]:
        out: list[str] = []

        def walk(items: list[dict[str, Any]]) -> None:
            for c in items or []:
                if c.get("custom_id"):
                    out.append(c["custom_id"])
                walk(c.get("components") or [])
                for key in ("component", "accessory"):
                    if isinstance(c.get(key), dict):
                        walk([c[key]])

        walk(self.components)
        return out

    def text(self) -> str:
        """Content plus embed titles/descriptions/fields, for easy assertions."""
        parts = [self.content]
        for e in self.embeds:
            parts += [e.get("title") or "", e.get("description") or ""]
            parts += [f"{f.get('name')}: {f.get('value')}" for f in e.get("fields") or []]
        return "\n".join(p for p in parts if p)


@dataclass
class Bot:
    application_id: str
    token: str
    user_id: str
    name: str


@dataclass
class GuildInfo:
    id: str
    name: str
    channels: dict[str, str] = field(default_factory=dict)  # name -> id
    roles: dict[str, str] = field(default_factory=dict)  # name -> id
    raw: dict[str, Any] = field(default_factory=dict)

    def channel(self, name_or_id: str) -> str:
        return self.channels.get(name_or_id, name_or_id)

    def role(self, name_or_id: str) -> str:
        return self.roles.get(name_or_id, name_or_id)


@dataclass
class Reply:
    kind: str  # "message" | "update" | "followup" | "modal" | "autocomplete"
    message: Msg | None = None
    modal: dict[str, Any] | None = None
    choices: list[dict[str, Any]] | None = None

    @property
    def ephemeral(self) -> bool:
        return bool(self.message and self.message.ephemeral)

    @property
    def content(self) -> str:
        return self.message.content if self.message else ""


def _reply_of(rec: dict[str, Any]) -> Reply | None:
    cb = rec["callback_type"]
    followups = [Msg(m) for m in rec["followups"]]
    original = Msg(rec["original"]) if rec["original"] else None
    if cb == 4 and original:
        return Reply("message", original)
    if cb == 5 and original and not original.get("loading"):
        return Reply("message", original)
    if cb == 7 or (cb == 6 and rec["updated"]):
        return Reply("update", Msg(rec["source_message"]) if rec["source_message"] else None)
    if cb in (5, 6) and followups:
        return Reply("followup", followups[0])
    if cb == 9:
        return Reply("modal", modal=rec["modal"])
    if cb == 8:
        return Reply("autocomplete", choices=rec["autocomplete"])
    return None


class InteractionResult:
    """Handle on one simulated interaction; await what the user saw."""

    def __init__(self, sandbox: DiscordSandbox, interaction_id: str, user_id: str) -> None:
        self.sandbox, self.id, self.user_id = sandbox, interaction_id, user_id

    async def record(self) -> dict[str, Any]:
        return await self.sandbox.interaction(self.id)

    async def wait_reply(self, timeout: float = 5.0) -> Reply:  # noqa: ASYNC109
        """First visible response: message (incl. deferred-then-edited), update or modal."""
        return await self.sandbox.poll(self.record, _reply_of, timeout, "interaction reply")

    async def wait_followups(self, count: int = 1, timeout: float = 5.0) -> list[Msg]:  # noqa: ASYNC109
        def ready(rec: dict[str, Any]) -> list[Msg] | None:
            msgs = [Msg(m) for m in rec["followups"]]
            return msgs if len(msgs) >= count else None

        return await self.sandbox.poll(self.record, ready, timeout, f"{count} followup(s)")

    async def wait_modal(self, timeout: float = 5.0) -> dict[str, Any]:  # noqa: ASYNC109
        reply = await self.wait_reply(timeout)
        if reply.kind != "modal" or reply.modal is None:
            raise AssertionError(f"expected a modal, got {reply}")
        return reply.modal


class Buyer:
    """A simulated Discord user acting on bots through the control API."""

    def __init__(self, sandbox: DiscordSandbox, user: dict[str, Any], locale: str) -> None:
        self.sandbox, self.user, self.locale = sandbox, user, locale
        self.id: str = user["id"]

    async def _act(self, kind: str, body: dict[str, Any]) -> InteractionResult:
        body.setdefault("locale", self.locale)
        data = await self.sandbox.call("POST", f"/_sandbox/interactions/{kind}",
                                       json=dict(body, user_id=self.id))
        return InteractionResult(self.sandbox, data["interaction_id"], self.id)

    async def slash(self, bot: Any, guild: Any, channel: str | None, name: str,
                    options: dict[str, Any] | list[Any] | None = None,
                    locale: str | None = None) -> InteractionResult:
        """Run /name in a guild channel (channel may be a name when guild is a GuildInfo).
        An attachment option takes `upload(filename, data)`."""
        if isinstance(guild, GuildInfo) and channel is not None:
            channel = guild.channel(channel)
        body = {"application_id": _id(bot), "guild_id": _id(guild), "channel_id": channel,
                "name": name, "options": options or {}}
        if locale:
            body["locale"] = locale
        return await self._act("slash", body)

    async def slash_dm(self, bot: Any, name: str, options: dict[str, Any] | None = None
                       ) -> InteractionResult:
        """Run /name in the bot's DM."""
        return await self._act("slash", {"application_id": _id(bot), "name": name,
                                         "options": options or {}})

    async def click(self, message: dict[str, Any], custom_id: str) -> InteractionResult:
        return await self._act("component", {"message_id": message["id"], "custom_id": custom_id})

    async def select(self, message: dict[str, Any], custom_id: str, values: list[str]
                     ) -> InteractionResult:
        return await self._act("component", {"message_id": message["id"],
                                             "custom_id": custom_id, "values": values})

    async def submit_modal(self, opened_by: InteractionResult | str, values: dict[str, Any]
                           ) -> InteractionResult:
        """Submit the modal that `opened_by` answered with; values keyed by custom_id."""
        opener = opened_by.id if isinstance(opened_by, InteractionResult) else str(opened_by)
        return await self._act("modal", {"interaction_id": opener, "values": values})

    async def say(self, channel_id: str, content: str) -> Msg:
        return Msg(await self.sandbox.call("POST", f"/_sandbox/channels/{channel_id}/messages",
                                           json={"user_id": self.id, "content": content}))

    async def dms(self, bot: Any = None) -> list[Msg]:
        return await self.sandbox.dms(self.id, bot)

    async def wait_dm(self, predicate: Callable[[Msg], Any] | None = None, timeout: float = 5.0,  # noqa: ASYNC109
                      bot: Any = None) -> Msg:
        """The first DM from a bot matching predicate (any DM when None)."""
        def pick(msgs: list[Msg]) -> Msg | None:
            return next((m for m in msgs if predicate is None or predicate(m)), None)

        return await self.sandbox.poll(lambda: self.dms(bot), pick, timeout, "a DM")

    async def roles(self, guild: Any) -> list[str]:
        member = await self.sandbox.call("GET", f"/_sandbox/guilds/{_id(guild)}/members/{self.id}")
        return member["roles"]

    async def role_names(self, guild: Any) -> list[str]:
        member = await self.sandbox.call("GET", f"/_sandbox/guilds/{_id(guild)}/members/{self.id}")
        return member["role_names"]

    async def wait_role(self, guild: GuildInfo, role: str, timeout: float = 5.0) -> list[str]:  # noqa: ASYNC109
        role_id = guild.role(role)
        return await self.sandbox.poll(lambda: self.roles(guild),
                                       lambda r: r if role_id in r else None, timeout,
                                       f"role {role}")


class DiscordSandbox:
    """Control-API client. `base_url` is the sandbox root (e.g. http://127.0.0.1:8900)."""

    def __init__(self, base_url: str, *, poll_interval: float = 0.05, timeout: float = 10.0
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
        body = resp.json() if resp.headers.get("content-type", "").startswith(
            "application/json") else resp.text
        if resp.status_code >= 400:
            raise SandboxAPIError(resp.status_code, body)
        return body

    async def poll(self, fetch: Callable[[], Awaitable[Any]], pick: Callable[[Any], T | None],
                   timeout: float, what: str) -> T:  # noqa: ASYNC109
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
    async def create_bot(self, name: str = "SandboxBot", *,
                         privileged_intents: list[str] | tuple[str, ...] = (),
                         token: str | None = None) -> Bot:
        data = await self.call("POST", "/_sandbox/bots", json={
            "name": name, "privileged_intents": list(privileged_intents), "token": token})
        return Bot(data["application_id"], data["token"], data["bot_user_id"], data["name"])

    async def create_user(self, username: str, *, locale: str = "pt-BR",
                          email: str | None = None) -> dict[str, Any]:
        return await self.call("POST", "/_sandbox/users",
                               json={"username": username, "locale": locale, "email": email})

    async def create_guild(self, name: str = "Sandbox Guild", *, owner_id: str | None = None,
                           channels: list[str] | tuple[str, ...] = ("general",),
                           roles: list[str] | tuple[str, ...] = (), bots: list[Any] = (),
                           locale: str = "pt-BR") -> GuildInfo:  # type: ignore[assignment]
        data = await self.call("POST", "/_sandbox/guilds", json={
            "name": name, "owner_id": owner_id, "locale": locale,
            "channels": [{"name": c} for c in channels],
            "roles": [{"name": r} for r in roles], "bots": [_id(b) for b in bots]})
        return _guild_info(data)

    async def guild(self, guild_id: str) -> GuildInfo:
        return _guild_info(await self.call("GET", f"/_sandbox/guilds/{guild_id}"))

    async def add_bot_to_guild(self, guild: Any, bot: Any, permissions: int | None = None,
                               added_by: str | None = None) -> GuildInfo:
        """A user (`added_by`; None: the bot's owner) adds the bot; it gets GUILD_CREATE.
        A private bot (`set_bot_public(bot, False)`) refuses anyone but its owner."""
        body: dict[str, Any] = {"application_id": _id(bot)}
        if permissions is not None:
            body["permissions"] = permissions
        if added_by is not None:
            body["added_by"] = added_by
        return _guild_info(await self.call("POST", f"/_sandbox/guilds/{_id(guild)}/bots",
                                           json=body))

    async def add_member(self, guild: Any, user_id: str, roles: list[str] | tuple[str, ...] = ()
                         ) -> dict[str, Any]:
        return await self.call("POST", f"/_sandbox/guilds/{_id(guild)}/members",
                               json={"user_id": user_id, "roles": list(roles)})

    async def buyer(self, username: str = "buyer", *, guilds: list[Any] = (),
                    locale: str = "pt-BR") -> Buyer:  # type: ignore[assignment]
        """Create a human user, make it a member of `guilds`, return its simulator."""
        user = await self.create_user(username, locale=locale)
        for g in guilds:
            await self.add_member(g, user["id"])
        return Buyer(self, user, locale)

    async def create_oauth_app(self, redirect_uris: list[str], *, client_id: str | None = None,
                               client_secret: str | None = None) -> dict[str, Any]:
        return await self.call("POST", "/_sandbox/oauth/apps", json={
            "redirect_uris": redirect_uris, "client_id": client_id,
            "client_secret": client_secret})

    async def configure(self, **config: Any) -> dict[str, Any]:
        return await self.call("PATCH", "/_sandbox/config", json=config)

    # ---- faults --------------------------------------------------------------------
    async def set_faults(self, bot: Any, **faults: Any) -> dict[str, Any]:
        """invalid_token, no_ready, delay_ms, dms_closed=[user ids],
        missing_permissions=[channel ids], privileged_intents=[names]."""
        return await self.call("PATCH", f"/_sandbox/bots/{_id(bot)}/faults", json=faults)

    async def add_fault_rule(self, bot: Any, kind: str, *, method: str = "*", path: str = "*",
                             count: int = 1, **extra: Any) -> dict[str, Any]:
        """kind: "ratelimit" (retry_after, is_global), "error" (status), "delay" (delay_ms) or
        "hold" (the request takes effect, its answer is held until the client hangs up)."""
        rule = dict(kind=kind, method=method, path=path, count=count, **extra)
        return await self.set_faults(bot, rules=[rule])

    async def set_bot_public(self, bot: Any, public: bool) -> dict[str, Any]:
        """The owner switches "Public Bot" in the Developer Portal (`bot_public`)."""
        return await self.call("PATCH", f"/_sandbox/bots/{_id(bot)}/application",
                               json={"bot_public": public})

    async def clear_faults(self, bot: Any) -> dict[str, Any]:
        return await self.call("DELETE", f"/_sandbox/bots/{_id(bot)}/faults")

    async def disconnect(self, bot: Any, code: int = 4000, *, resume_delay_ms: int = 0) -> int:
        """Close the bot's gateway connections with `code`; returns how many were closed.

        resume_delay_ms holds the next RESUME, so events sent meanwhile must be replayed."""
        data = await self.call("POST", f"/_sandbox/bots/{_id(bot)}/disconnect",
                               json={"code": code, "resume_delay_ms": resume_delay_ms})
        return data["closed"]

    async def set_session_start_limit(self, bot: Any, **limit: int) -> dict[str, Any]:
        """total, remaining, reset_after_ms."""
        return await self.call("PATCH", f"/_sandbox/bots/{_id(bot)}/session_start_limit",
                               json=limit)

    # ---- observations --------------------------------------------------------------
    async def bot_info(self, bot: Any) -> dict[str, Any]:
        return await self.call("GET", f"/_sandbox/bots/{_id(bot)}")

    async def wait_bot(self, bot: Any, predicate: Callable[[dict[str, Any]], Any],
                       timeout: float = 10.0, what: str = "bot state") -> dict[str, Any]:  # noqa: ASYNC109
        return await self.poll(lambda: self.bot_info(bot),
                               lambda info: info if predicate(info) else None, timeout, what)

    async def commands(self, bot: Any) -> list[dict[str, Any]]:
        return await self.call("GET", f"/_sandbox/bots/{_id(bot)}/commands")

    async def wait_commands(self, bot: Any, names: list[str], timeout: float = 10.0  # noqa: ASYNC109
                            ) -> list[dict[str, Any]]:
        def ok(cmds: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
            return cmds if set(names) <= {c["name"] for c in cmds} else None

        return await self.poll(lambda: self.commands(bot), ok, timeout, f"commands {names}")

    async def requests(self, bot: Any, method: str | None = None, path: str | None = None
                       ) -> list[dict[str, Any]]:
        params = {k: v for k, v in (("method", method), ("path", path)) if v}
        return await self.call("GET", f"/_sandbox/bots/{_id(bot)}/requests", params=params)

    async def channel_messages(self, channel_id: str, *, include_ephemeral: bool = False
                               ) -> list[Msg]:
        data = await self.call("GET", f"/_sandbox/channels/{channel_id}/messages",
                               params={"include_ephemeral": str(include_ephemeral).lower()})
        return [Msg(m) for m in data]

    async def wait_channel_message(self, channel_id: str, predicate: Callable[[Msg], Any],
                                   timeout: float = 5.0) -> Msg:  # noqa: ASYNC109
        def pick(msgs: list[Msg]) -> Msg | None:
            return next((m for m in msgs if predicate(m)), None)

        return await self.poll(lambda: self.channel_messages(channel_id), pick, timeout,
                               "a channel message")

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


def _guild_info(data: dict[str, Any]) -> GuildInfo:
    return GuildInfo(data["id"], data["name"],
                     {c["name"]: c["id"] for c in data.get("channels", [])},
                     {r["name"]: r["id"] for r in data.get("roles", [])}, data)
