"""The tenant bot: one disnake InteractionBot with minimal intents and caches, plus extensions."""

from __future__ import annotations

import asyncio
import importlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import disnake
import redis.asyncio as aioredis
from disnake import ApplicationCommand
from disnake.ext import commands

from core.settings import Settings
from fleet.errors import FencedOut
from fleet.runtime import RuntimeStore
from worker import extensions, guild_scope
from worker.fence_guard import FenceGuard

log = logging.getLogger("worker")

BackgroundTask = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class WorkerContext:
    """What an extension may use: ids, settings, the process's Redis client and runtime store."""

    instance_id: int
    tenant_id: int
    settings: Settings
    redis: aioredis.Redis
    store: RuntimeStore
    locale: str = "pt-BR"
    store_guild_id: int | None = None  # the only guild the bot serves (None: not set yet)
    # the fencing token the owner's writes carry, and the stop when one is refused
    fencing: FenceGuard = field(default_factory=FenceGuard)
    bot_public: bool | None = None  # as the database had it at start (None: never read)


class WorkerBot(commands.InteractionBot):
    """InteractionBot that knows its instance and runs extension background tasks after READY."""

    def __init__(
        self, ctx: WorkerContext, intents: disnake.Intents, guild_ready_timeout: float = 0.5
    ) -> None:
        super().__init__(
            intents=intents,
            max_messages=None,
            member_cache_flags=disnake.MemberCacheFlags.none(),
            chunk_guilds_at_startup=False,
            guild_ready_timeout=guild_ready_timeout,
            # every message pings nobody unless a send names who (a product called
            # "@everyone" must not ping a server)
            allowed_mentions=disnake.AllowedMentions.none(),
        )
        self.ctx = ctx
        self.ready_at: float | None = None  # gateway READY of this process (first one)
        self._background: list[tuple[str, BackgroundTask]] = []
        self._tasks: list[asyncio.Task[None]] = []
        # run after login, before the first connection (e.g. worker.optional_intents)
        self.before_connect: list[BackgroundTask] = []

    async def login(self, token: str) -> None:
        await super().login(token)
        for hook in self.before_connect:
            await hook()

    async def _fill_owners(self) -> None:
        """disnake fetches the application's owners right after login
        (`GET /oauth2/applications/@me`) for `is_owner`, which no Vitrine command uses: not
        fetched, one request less for every start (2,000 at a fleet's start)."""

    def add_background_task(self, factory: BackgroundTask, name: str) -> None:
        """Run `factory()` once the gateway is READY; it is cancelled when the bot closes.
        A task that raises is logged and restarted after a second (it must be idempotent)."""
        self._background.append((name, factory))
        if self.ready_at is not None:
            self._tasks.append(asyncio.create_task(self._keep(name, factory)))

    def start_background(self) -> None:
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._keep(n, f)) for n, f in self._background]

    async def _keep(self, name: str, factory: BackgroundTask) -> None:
        while not self.is_closed():
            try:
                await factory()
                return
            except asyncio.CancelledError:
                raise
            except FencedOut as exc:  # another node owns the bot now: this process stops
                self.ctx.fencing.refuse(exc)
                return
            except Exception:
                log.exception("background task %s failed; restarting it in 1 s", name)
                await asyncio.sleep(1.0)

    def _ordered_unsynced_commands(
        self, test_guilds: Sequence[int] | None = None
    ) -> tuple[list[ApplicationCommand], dict[int, list[ApplicationCommand]]]:
        """Where disnake registers each command: one usable in DMs (/meus-pedidos, /status)
        globally, every other one in the store's guild only, so that no other server even
        offers it (guild commands exist only in their guild). The commands themselves are
        the zygote's, shared by every worker: only this placement is per bot."""
        global_cmds, guild_cmds = super()._ordered_unsynced_commands(test_guilds)
        keep: list[ApplicationCommand] = []
        for body in global_cmds:
            contexts = body.contexts
            if contexts is None or contexts.bot_dm or contexts.private_channel:
                keep.append(body)
            elif self.ctx.store_guild_id is not None:
                guild_cmds.setdefault(self.ctx.store_guild_id, []).append(body)
        return keep, guild_cmds

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await super().close()


def build_bot(ctx: WorkerContext, modules: list[str], guild_ready_timeout: float) -> WorkerBot:
    """Build the bot inside the running loop (disnake binds the loop at construction)."""
    disnake.http.Route.BASE = ctx.settings.discord_api_base
    bot = WorkerBot(ctx, extensions.required_intents(modules), guild_ready_timeout)
    guild_scope.install(bot)  # before any extension: it sees interactions first
    for name in modules:
        # The module the zygote imported, not `bot.load_extension`: that executes the module's
        # code again (a fresh module object, new classes and functions) in every worker.
        importlib.import_module(name).setup(bot)
    return bot


def mark_ready(bot: WorkerBot, on_ready: Callable[[], None]) -> None:
    """Call `on_ready` when the gateway READY arrives (before disnake's guild wait), or
    RESUMED when this process began by resuming its predecessor's session (worker.resume)."""

    async def on_socket_event_type(event: str) -> None:
        if event in ("READY", "RESUMED") and bot.ready_at is None:
            bot.ready_at = time.time()
            bot.remove_listener(on_socket_event_type)
            bot.start_background()
            on_ready()

    bot.add_listener(on_socket_event_type)
