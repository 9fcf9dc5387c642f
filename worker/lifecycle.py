"""One worker's life: runtime record, heartbeats, lastError, and the exit code it ends with."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import signal
import time
from dataclasses import dataclass

import disnake
from redis.exceptions import RedisError

from core.errors import IllegalTransition
from core.i18n import t
from fleet import fencing, keys
from fleet.exitcodes import CONFIG_CLOSE_CODES, ExitCode
from fleet.leases import Lease, LeaseBook
from fleet.runtime import RuntimeStore, StaleWriter, beat_write
from fleet.states import InstanceState
from worker import extensions, page_share
from worker.bot import WorkerBot
from worker.fence_guard import FenceGuard, LeaseClock
from worker.resume import SessionKeeper, close_keeping_session, count_login

log = logging.getLogger("worker")

ORPHAN_AFTER_S = 30.0
# READY came before the orchestrator recorded this process's pid (it writes the record right
# after the fork; in a mass start that can take longer than the login): look again this soon,
# doubling up to the beat period, instead of a whole beat later (10 s idle for nothing)
ONLINE_RETRY_S = 0.25


@dataclass(frozen=True)
class Outcome:
    """How the bot ended: the exit code, and the lastError to record (None: nothing to say)."""

    code: ExitCode
    error_code: str | None = None
    message: str | None = None
    session: tuple[int, float] | None = None  # session_start_limit (remaining, reset_at)


def classify(exc: BaseException | None, bot: WorkerBot, locale: str) -> Outcome:
    """Map what `bot.start()` raised to an exit code and a plain-language lastError."""
    if isinstance(exc, disnake.LoginFailure):
        return Outcome(ExitCode.CONFIG, "401", t("runtime.error.invalid_token", locale))
    if isinstance(exc, disnake.PrivilegedIntentsRequired):
        names = " / ".join(extensions.privileged_names(bot.intents)) or "privilegiado"
        return Outcome(
            ExitCode.CONFIG, "4014", t("runtime.error.disallowed_intents", locale, intents=names)
        )
    if isinstance(exc, disnake.ConnectionClosed) and exc.code in CONFIG_CLOSE_CODES:
        key = {
            4004: "runtime.error.invalid_token",
            4013: "runtime.error.invalid_intents",
            4014: "runtime.error.disallowed_intents",
        }.get(exc.code, "runtime.error.gateway_config")
        return Outcome(
            ExitCode.CONFIG, str(exc.code), t(key, locale, code=exc.code, intents="privilegiado")
        )
    if isinstance(exc, disnake.SessionStartLimitReached):
        when = time.strftime(
            "%d/%m %H:%M UTC", time.gmtime(exc.session_start_limit.reset_time.timestamp())
        )
        return Outcome(
            ExitCode.SESSION_LIMIT,
            "session_start_limit",
            t("runtime.error.session_limit", locale, when=when),
            session=(
                exc.session_start_limit.remaining,
                exc.session_start_limit.reset_time.timestamp(),
            ),
        )
    detail = "gateway closed" if exc is None else type(exc).__name__
    return Outcome(ExitCode.CRASH, "crash", t("runtime.error.crash", locale, detail=detail))


class Lifecycle:
    """Heartbeats while the event loop and the gateway are healthy; writes READY and the end."""

    def __init__(
        self,
        instance_id: int,
        store: RuntimeStore,
        *,
        beat_every: float,
        gateway_grace: float,
        locale: str,
        lease: str | None = None,
        lease_ttl: float = 30.0,
        guard: FenceGuard | None = None,
    ) -> None:
        self.instance_id = instance_id
        # the database refused one of the bot's writes (fleet.fencing): stop, LEASE_LOST
        self.guard = guard
        self.store = store
        # the orchestrator node's lease for this process: renewed with every beat; another
        # holder means another node runs this bot now, and this process stops (fencing)
        self.lease = lease
        held = Lease.parse(lease)
        self.leases = LeaseBook(store.redis, held.node, lease_ttl) if held else None
        self.lease_lost = False
        # a whole TTL without a confirmed renewal: the lease may be another's, stop
        self.clock = LeaseClock(lease_ttl) if held else None
        self.pid = os.getpid()
        self.beat_every = beat_every
        self.gateway_grace = gateway_grace  # no gateway this long -> stop beating (stuck)
        self.locale = locale
        self.down_since: float | None = time.time()  # not connected yet
        self.online_written = False
        self.ready = False
        self.wake = asyncio.Event()
        self.closing = False
        self.stale_since: float | None = None
        self.online_retry = ONLINE_RETRY_S
        self.stop: asyncio.Event | None = None
        self.watch: asyncio.Task[None] | None = None  # the lease clock's
        self.keeper: SessionKeeper | None = None  # the gateway session, for a successor
        self.handing_over = False  # SIGUSR2: stop, leaving the session resumable
        self.pages = page_share.Schedule()  # copies of zygote pages given back

    def attach(self, bot: WorkerBot) -> None:
        async def on_disconnect() -> None:
            if self.down_since is None:
                self.down_since = time.time()

        async def on_resumed() -> None:
            self.down_since = None

        async def on_socket_event_type(event: str) -> None:
            # every READY counts: after a refused RESUME (op 9 d:false, 4007, 4009) disnake
            # logs in again and gets READY, not RESUMED, and the bot is serving again
            if event == "READY":
                self.down_since = None
                self.wake.set()

        async def on_gateway_identify() -> None:
            try:
                await count_login(self.store.redis, self.instance_id)
            except (RedisError, OSError) as exc:
                log.warning("could not count the login: %s", type(exc).__name__)

        bot.add_listener(on_disconnect)
        bot.add_listener(on_resumed)
        bot.add_listener(on_socket_event_type)
        bot.add_listener(on_gateway_identify)

    def on_ready(self) -> None:
        self.ready = True
        self.down_since = None
        self.wake.set()  # write `online` now, not at the next beat
        self.pages.after_ready()

    def healthy(self) -> bool:
        return self.down_since is None or time.time() - self.down_since < self.gateway_grace

    async def beat_once(self, bot: WorkerBot) -> None:
        if self.clock is not None and self.clock.expire_if_overdue(self._fenced_out):
            return  # woken from a pause past the lease: never push the clock on (fence_guard)
        if not self.healthy():
            if self.clock is not None:  # no gateway session to bound: its clock waits too
                self.clock.renewed(time.monotonic())
            return  # the orchestrator sees the silence and replaces this process
        latency = bot.latency
        latency_ms = None if math.isinf(latency) or math.isnan(latency) else round(latency * 1e3, 1)
        guilds = len(bot.guilds) if self.ready else None
        sent = time.monotonic()
        if self.leases is not None and self.lease is not None:
            write = beat_write(self.instance_id, latency_ms, guilds)
            if not await self.leases.renew_and_beat(self.instance_id, self.lease, write):
                log.warning(
                    "instance lease %s now held by another node: stopping (fenced)", self.lease
                )
                self._fenced_out()
                return
            if self.clock is not None:
                self.clock.renewed(sent)
        else:
            await self.store.beat(self.instance_id, latency_ms, guilds)
        if self.ready and not self.online_written:
            await self._write_online(bot)
        self.pages.on_beat()
        if self.keeper is not None and self.ready:
            await self.keeper.save(bot)
            if (mode := self.keeper.connected_by()) is not None:
                await self.store.update(
                    self.instance_id, connected_by=mode, connected_at=f"{time.time():.3f}"
                )

    async def _write_online(self, bot: WorkerBot) -> None:
        limit = bot.session_start_limit
        try:
            await self.store.transition(
                self.instance_id,
                InstanceState.ONLINE,
                expect_pid=self.pid,
                last_error=None,
                # this process's CPU from its fork to serving (benchmarks read it: issue 14)
                start_cpu_ms=f"{time.process_time() * 1e3:.1f}",
            )
        except (StaleWriter, IllegalTransition) as exc:
            # the orchestrator has not written our pid yet, or is stopping us: try next beat
            if not (isinstance(exc, IllegalTransition) and exc.current == InstanceState.ONLINE):
                log.info("not marking online yet: %s", exc)
                self._orphan_check(isinstance(exc, StaleWriter))
                if isinstance(exc, StaleWriter):
                    asyncio.get_running_loop().call_later(self.online_retry, self.wake.set)
                    self.online_retry = min(self.beat_every, self.online_retry * 2)
                return
        resumed = self.keeper is not None and self.keeper.rs.mode == "resume"
        if limit is not None and not resumed:  # a RESUME spends no login
            await self.store.redis.hset(
                keys.session_limit(self.instance_id),
                mapping={
                    # read before this IDENTIFY, which spent one
                    "total": limit.total,
                    "remaining": max(0, limit.remaining - 1),
                    "reset_at": f"{limit.reset_time.timestamp():.3f}",
                    "read_at": f"{time.time():.3f}",
                },
            )
        self.online_written = True
        self.online_retry = ONLINE_RETRY_S  # a later rewrite (Redis lost it) starts short again
        log.info("online (READY) with %d guild(s)", len(bot.guilds))

    def _hand_over(self) -> None:
        """SIGUSR2: stop like SIGTERM, but leave the gateway session (and its stored copy)
        for the process that takes the bot over, which RESUMEs it (worker.resume)."""
        self.handing_over = True
        if self.stop is not None:
            self.stop.set()

    def _fenced_out(self) -> None:
        """The lease is another's (renewal), may be (clock) or a write was refused: stop now."""
        self.lease_lost = True
        if self.stop is not None:
            self.stop.set()

    def is_closing(self) -> bool:
        return self.closing

    def _orphan_check(self, stale: bool) -> None:
        """A worker whose pid the record never names is one nobody watches (e.g. a spawn
        whose answer was lost): it stops itself rather than run the bot twice."""
        if not stale:
            self.stale_since = None
            return
        now = time.time()
        self.stale_since = self.stale_since or now
        if now - self.stale_since > ORPHAN_AFTER_S and self.stop is not None:
            log.warning("the runtime record names another process: stopping (orphan)")
            self.stop.set()

    async def heartbeat_loop(self, bot: WorkerBot) -> None:
        # Ends by itself when `closing` is set: cancelling it in the middle of a Redis call
        # was seen to hang the process on the way out.
        while not self.closing:
            try:
                await self.beat_once(bot)
            except (RedisError, OSError) as exc:
                self.online_written = False  # Redis may have lost the record: write it again
                log.warning("heartbeat failed: %s", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self.beat_every)
            self.wake.clear()

    async def run(self, bot: WorkerBot, token: str) -> Outcome:
        """Run the bot until SIGTERM/SIGINT (clean) or until it fails (classified)."""
        stop = self.stop = asyncio.Event()
        if self.guard is not None:
            self.guard.on_refused(self._fenced_out)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGUSR2, self._hand_over)
        self.attach(bot)
        beats = asyncio.create_task(self.heartbeat_loop(bot))
        if self.clock is not None:
            self.watch = asyncio.create_task(self.clock.watch(self._fenced_out, self.is_closing))
        runner = asyncio.create_task(bot.start(token))
        stopper = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if stop.is_set():
                fenced = self.guard is not None and self.guard.refused is not None
                expired = self.clock is not None and self.clock.expired
                why = (
                    "fenced"
                    if fenced
                    else "lease expired"
                    if expired
                    else "lease lost"
                    if self.lease_lost
                    else "signal"
                )
                log.info("stopping (%s)", "handover" if self.handing_over else why)
                if self.handing_over or self.lease_lost:
                    # another process or node takes the bot over: leave it the session
                    await close_keeping_session(bot)
                else:
                    await bot.close()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(runner, 10)
                if fenced:  # counted where the partition tests and operators look
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(fencing.note_refusal(self.instance_id), 3)
                    return Outcome(ExitCode.LEASE_LOST, "fenced")
                if self.lease_lost:  # the exit note's detail tells the three causes apart
                    return Outcome(ExitCode.LEASE_LOST, why.replace(" ", "_"))
                return Outcome(ExitCode.CLEAN)
            exc = runner.exception()
            outcome = classify(exc, bot, self.locale)
            log.error(
                "bot ended: %s (%s)",
                outcome.error_code,
                type(exc).__name__ if exc else "no exception",
                exc_info=exc if outcome.code == ExitCode.CRASH else None,
            )
            return outcome
        finally:
            self.closing = True
            self.wake.set()
            stopper.cancel()
            runner.cancel()
            if self.watch is not None:
                self.watch.cancel()  # only sleeps between looks at the clock
            await asyncio.wait({beats, stopper, runner}, timeout=3)
            if not bot.is_closed():
                await asyncio.wait_for(bot.close(), 5)
