"""Value types of the Discord sandbox client: ids, uploads, messages, bots, guilds, replies and
interaction results (split from `sandbox.discord.client`, which re-exports them)."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sandbox.discord.client import DiscordSandbox


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
