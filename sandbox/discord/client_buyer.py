"""A simulated Discord user (buyer, staff, attacker) acting on bots through the sandbox's
control API (split from `sandbox.discord.client`, which re-exports it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sandbox.discord.client_types import GuildInfo, InteractionResult, Msg, _id

if TYPE_CHECKING:
    from sandbox.discord.client import DiscordSandbox


class Buyer:
    """A simulated Discord user acting on bots through the control API."""

    def __init__(self, sandbox: DiscordSandbox, user: dict[str, Any], locale: str) -> None:
        self.sandbox, self.user, self.locale = sandbox, user, locale
        self.id: str = user["id"]

    async def _act(self, kind: str, body: dict[str, Any]) -> InteractionResult:
        body.setdefault("locale", self.locale)
        data = await self.sandbox.call(
            "POST", f"/_sandbox/interactions/{kind}", json=dict(body, user_id=self.id)
        )
        return InteractionResult(self.sandbox, data["interaction_id"], self.id)

    async def slash(
        self,
        bot: Any,
        guild: Any,
        channel: str | None,
        name: str,
        options: dict[str, Any] | list[Any] | None = None,
        locale: str | None = None,
    ) -> InteractionResult:
        """Run /name in a guild channel (channel may be a name when guild is a GuildInfo).
        An attachment option takes `upload(filename, data)`."""
        if isinstance(guild, GuildInfo) and channel is not None:
            channel = guild.channel(channel)
        body = {
            "application_id": _id(bot),
            "guild_id": _id(guild),
            "channel_id": channel,
            "name": name,
            "options": options or {},
        }
        if locale:
            body["locale"] = locale
        return await self._act("slash", body)

    async def slash_dm(
        self, bot: Any, name: str, options: dict[str, Any] | None = None
    ) -> InteractionResult:
        """Run /name in the bot's DM."""
        return await self._act(
            "slash", {"application_id": _id(bot), "name": name, "options": options or {}}
        )

    async def click(self, message: dict[str, Any], custom_id: str) -> InteractionResult:
        return await self._act("component", {"message_id": message["id"], "custom_id": custom_id})

    async def select(
        self, message: dict[str, Any], custom_id: str, values: list[str]
    ) -> InteractionResult:
        return await self._act(
            "component", {"message_id": message["id"], "custom_id": custom_id, "values": values}
        )

    async def submit_modal(
        self, opened_by: InteractionResult | str, values: dict[str, Any]
    ) -> InteractionResult:
        """Submit the modal that `opened_by` answered with; values keyed by custom_id."""
        opener = opened_by.id if isinstance(opened_by, InteractionResult) else str(opened_by)
        return await self._act("modal", {"interaction_id": opener, "values": values})

    async def say(self, channel_id: str, content: str) -> Msg:
        return Msg(
            await self.sandbox.call(
                "POST",
                f"/_sandbox/channels/{channel_id}/messages",
                json={"user_id": self.id, "content": content},
            )
        )

    async def dms(self, bot: Any = None) -> list[Msg]:
        return await self.sandbox.dms(self.id, bot)

    async def wait_dm(
        self,
        predicate: Callable[[Msg], Any] | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109
        bot: Any = None,
    ) -> Msg:
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
        return await self.sandbox.poll(
            lambda: self.roles(guild),
            lambda r: r if role_id in r else None,
            timeout,
            f"role {role}",
        )
