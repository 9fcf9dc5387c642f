"""A tenant bot serves only its store's guild (issue 13).

Discord applications are public by default, so anyone can add a seller's bot to their own
server. The worker therefore:
* answers every interaction from another guild with a short ephemeral refusal and nothing
  else — checked where INTERACTION_CREATE is parsed, before any command, component or modal
  handler sees it; DMs (a buyer's /meus-pedidos, the delivery DM's components) pass;
* leaves any other guild it is in (at start or on a join) and records a `foreign_guild` alert;
* reads the application's `bot_public` at every start (the dashboard warns while it is true).
Commands are registered in the store's guild only (`WorkerBot._ordered_unsynced_commands`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import disnake

from core.i18n import normalize_locale, t
from fleet.errors import FencedOut
from fleet.guildscope import record_bot_public, record_foreign_guild

if TYPE_CHECKING:
    from worker.bot import WorkerBot

log = logging.getLogger("worker.guild_scope")

EPHEMERAL = 1 << 6
CHANNEL_MESSAGE, AUTOCOMPLETE_RESULT = 4, 8  # interaction callback types
APPLICATION_COMMAND_AUTOCOMPLETE = 4  # interaction type


class GuildScope:
    """The gate, the leaver and the `bot_public` check of one worker's bot."""

    def __init__(self, bot: WorkerBot) -> None:
        self.bot = bot
        self.guild_id = bot.ctx.store_guild_id  # None: the store has not set its server yet
        self.public_recorded = bot.ctx.bot_public  # what the database has (None: nothing)
        self._tasks: set[asyncio.Task[None]] = set()

    def install(self) -> None:
        """Wrap the INTERACTION_CREATE parser and listen for guilds (before connecting)."""
        parsers = self.bot._connection.parsers  # the gateway dispatches through this dict
        parse = parsers["INTERACTION_CREATE"]

        def gate(data: dict[str, Any]) -> None:
            guild_id = data.get("guild_id")
            if guild_id is None or int(guild_id) == self.guild_id:
                parse(data)
                return
            self._spawn(self.refuse(data))

        parsers["INTERACTION_CREATE"] = gate
        self.bot.add_listener(self.check_guild, "on_guild_available")
        self.bot.add_listener(self.check_guild, "on_guild_join")
        self.bot.add_background_task(self.read_application, "guild-scope-application")

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def store_label(self) -> str:
        guild = self.bot.get_guild(self.guild_id) if self.guild_id else None
        return guild.name if guild else str(self.guild_id)

    async def refuse(self, data: dict[str, Any]) -> None:
        """The only answer an interaction from another guild gets."""
        locale = normalize_locale(data.get("locale"))
        user = (data.get("member") or {}).get("user") or data.get("user") or {}
        log.info(
            "refused an interaction from foreign guild %s (user %s)",
            data.get("guild_id"),
            user.get("id"),
        )
        body: dict[str, Any]
        if int(data.get("type") or 0) == APPLICATION_COMMAND_AUTOCOMPLETE:
            kind, body = AUTOCOMPLETE_RESULT, {"choices": []}
        else:
            text = (
                t("guildscope.refusal", locale, guild=self.store_label())
                if self.guild_id
                else t("guildscope.no_guild", locale)
            )
            kind = CHANNEL_MESSAGE
            body = {"content": text, "flags": EPHEMERAL, "allowed_mentions": {"parse": []}}
        try:
            # A raw API payload built by hand; disnake types `type` as an enum, `data` as
            # TypedDicts.
            await self.bot.http.create_interaction_response(
                data["id"],
                data["token"],
                type=kind,  # type: ignore[arg-type]
                data=body,  # type: ignore[arg-type]
            )
        except disnake.HTTPException as exc:
            log.warning("could not refuse an interaction from a foreign guild: %s", exc)

    async def check_guild(self, guild: disnake.Guild) -> None:
        """Leave a guild that is not the store's (not while the store has none set: the
        seller may be adding the bot to the server they are about to name)."""
        if self.guild_id is None or guild.id == self.guild_id:
            return
        ctx = self.bot.ctx
        try:
            await self.bot.http.leave_guild(guild.id)
            left = True
        except disnake.HTTPException as exc:
            log.warning("could not leave foreign guild %s: %s", guild.id, exc)
            left = False
        try:
            await record_foreign_guild(
                ctx.instance_id,
                ctx.tenant_id,
                str(guild.id),
                guild.name,
                guild.member_count,
                left=left,
                fence=ctx.fencing.fence,
            )
        except FencedOut as exc:  # another node owns the bot now: this process stops
            ctx.fencing.refuse(exc)

    async def read_application(self) -> None:
        """`GET /applications/@me` once per start: is anyone allowed to add this bot? (The
        answer `worker.optional_intents` read just before connecting, when it did.)"""
        app = getattr(self.bot, "application_payload", None)
        try:
            if app is None:
                app = await self.bot.http.request(disnake.http.Route("GET", "/applications/@me"))
        except disnake.HTTPException as exc:
            log.warning("could not read the application (bot_public): %s", exc)
            return
        public = bool(app.get("bot_public"))
        if public:
            log.warning("the application is public: anyone can add this bot to a server")
        if public == self.public_recorded:
            return  # the database has it already: no write (and no connection) at each start
        try:
            await record_bot_public(
                self.bot.ctx.instance_id, public, fence=self.bot.ctx.fencing.fence
            )
            self.public_recorded = public
        except FencedOut as exc:
            self.bot.ctx.fencing.refuse(exc)


def install(bot: WorkerBot) -> GuildScope:
    scope = GuildScope(bot)
    scope.install()
    return scope
