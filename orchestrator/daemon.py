"""The orchestrator's main loop: adopt live workers, then converge on start-up, on every control
command, on every change pass (dirty set, edited rows, blocked owners) and on a rare full pass;
watch heartbeats; publish the node heartbeat and figures (seen by /api/status)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.typing import EncodableT, FieldT

from core import redis as core_redis
from core.db import close_db, init_db
from core.settings import Settings
from core.tuning import tuning_float, tuning_int, tuning_name
from fleet import control_protocol, keys, ksm
from fleet.crashpolicy import PolicyConfig
from fleet.leases import lease_ttl
from orchestrator import control_handler
from orchestrator.desired_state import ChangeFeed
from orchestrator.handover import HANDOVER, hand_over, on_stop
from orchestrator.supervisor import Supervisor
from orchestrator.zygote_client import Spawner

log = logging.getLogger("orchestrator")

HEARTBEAT_EVERY_S = 5


@dataclass(frozen=True)
class DaemonConfig:
    """Loop periods and start pacing; `VITRINE_ORCH_*` / `VITRINE_SPAWN_*` override them."""

    pass_every: float = 2.0  # change pass: dirty set + edited rows + blocked owners
    full_every: float = 300.0  # full pass over every instance (safety net, deletions)
    spawn_rate: float = 20.0  # worker starts per second during a mass start
    spawn_burst: int = 10
    heartbeat_every: float = float(HEARTBEAT_EVERY_S)  # node heartbeat; silent 3x this: dead

    @classmethod
    def from_env(cls, env: dict[str, str] | os._Environ[str]) -> DaemonConfig:
        """Defaults, overridden by the environment; `TuningError` names a bad variable."""
        return cls(
            pass_every=tuning_float("VITRINE_ORCH_PASS_S", cls.pass_every, 0.01, 3600, env),
            full_every=tuning_float("VITRINE_ORCH_FULL_S", cls.full_every, 0.1, 86400, env),
            spawn_rate=tuning_float("VITRINE_SPAWN_RATE", cls.spawn_rate, 0.01, 100_000, env),
            spawn_burst=tuning_int("VITRINE_SPAWN_BURST", cls.spawn_burst, 1, 100_000, env),
            heartbeat_every=tuning_float(
                "VITRINE_ORCH_HEARTBEAT_S", cls.heartbeat_every, 0.05, 3600, env
            ),
        )


def check_tuning(env: dict[str, str] | os._Environ[str]) -> None:
    """Parse every tuning knob the daemon reads; `TuningError` (a ConfigError and a
    ValueError) names the bad one."""
    DaemonConfig.from_env(env)
    PolicyConfig.from_env(env)
    lease_ttl(env)
    node_name(env)
    on_stop(env)
    ksm.requested(env)


def node_name(env: Mapping[str, str] | None = None) -> str:
    """This node's name in Redis: ORCHESTRATOR_NODE, or the host name."""
    return tuning_name("ORCHESTRATOR_NODE", "", env) or socket.gethostname()


async def heartbeat(
    redis: aioredis.Redis,
    node: str,
    sup: Supervisor | None = None,
    every: float = HEARTBEAT_EVERY_S,
    *,
    alive: bool = True,
) -> None:
    """The node's heartbeat key (it expires after three missed beats: the node counts as
    dead for the others) and its status figures. `alive=False` publishes the figures only:
    the node is not yet ready to take the bots placement would give it."""
    ttl_ms = int(min(3 * every, keys.ORCHESTRATOR_TTL) * 1000)
    pipe = redis.pipeline(transaction=False)
    if alive:
        pipe.set(keys.orchestrator_heartbeat(node), f"{time.time():.3f}", px=ttl_ms)
        pipe.sadd(keys.ORCHESTRATOR_NODES, node)
    if sup is not None:
        status: dict[FieldT, EncodableT] = {k: v for k, v in sup.figures().items()}
        status |= {"pid": os.getpid(), "at": f"{time.time():.3f}"}
        pipe.hset(keys.orchestrator_status(node), mapping=status)
        pipe.pexpire(keys.orchestrator_status(node), ttl_ms)
    await pipe.execute()


async def _every(
    stop: asyncio.Event,
    period: float,
    what: str,
    step: Callable[[], Awaitable[None]],
    *,
    from_start: bool = False,
) -> None:
    """Run `step` every `period` s until stop; a failure (Redis restarting, database locked)
    is logged and the next round tries again. The wait is `period` after a step ends, or,
    with `from_start`, what is left of `period` since it began: a step that took longer
    than `period` is followed by the next one at once (the change pass: one that starts
    300 bots takes ~10 s, and waiting 2 s more after it left the CPU idle in a mass start
    while the bots switched on meanwhile waited, docs/benchmarks.md)."""
    failing = False
    while not stop.is_set():
        began = time.monotonic()
        try:
            await step()
            if failing:
                log.info("%s works again", what)
            failing = False
        except Exception as exc:  # noqa: BLE001 - keep the daemon alive through outages
            if not failing:
                log.warning("%s failed: %s: %s", what, type(exc).__name__, exc)
            failing = True
        wait = max(0.0, period - (time.monotonic() - began)) if from_start else period
        try:
            await asyncio.wait_for(stop.wait(), wait)
        except TimeoutError:
            pass


async def control_loop(
    redis: aioredis.Redis, sup: Supervisor, node: str, stop: asyncio.Event
) -> None:
    pending = True  # first re-read what a previous run of this node left unacknowledged
    while not stop.is_set():
        try:
            if pending:
                await control_protocol.ensure_group(redis, node)
            commands = await control_protocol.read_commands(redis, node, pending=pending)
            pending = False
            for cmd in commands:
                sup.spawn_task(_answer(redis, sup, cmd))
        except Exception as exc:  # noqa: BLE001 - Redis restarting: the group may be gone
            log.warning("control stream: %s", type(exc).__name__)
            pending = True
            await asyncio.sleep(0.5)


async def _answer(redis: aioredis.Redis, sup: Supervisor, cmd: control_protocol.Command) -> None:
    if not cmd.forwarded and cmd.action != control_protocol.Action.STOP_ALL:
        owner = await sup.owner_elsewhere(cmd.instance_id)
        if owner is not None:
            await control_protocol.forward(redis, cmd, owner)  # the node that runs it answers
            return
    if cmd.sent_at and time.time() - cmd.sent_at > keys.CONTROL_REPLY_TTL:
        res = control_protocol.result(
            False, control_protocol.ResultCode.FAILED, "command expired before it ran"
        )
    else:
        res = await control_handler.handle(sup, cmd)
    await control_protocol.reply(redis, cmd, res)


async def _changes(
    sup: Supervisor, feed: ChangeFeed, full_every: float, last_full: list[float]
) -> None:
    if time.monotonic() - last_full[0] >= full_every:
        await sup.reconcile()
        await feed.prime()
        last_full[0] = time.monotonic()
        return
    ids = await feed.dirty(sup.redis) | await feed.changed()
    if ids:
        await sup.reconcile(ids)


async def _connect_db(settings: Settings, stop: asyncio.Event) -> None:
    while True:
        try:
            await init_db(settings.database_url)
            return
        except Exception as exc:  # noqa: BLE001 - the database may still be starting
            log.warning("database not reachable (%s); retrying", type(exc).__name__)
            if stop.is_set():
                raise
            await asyncio.sleep(1.0)


async def run(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run until `stop` is set (or SIGTERM/SIGINT). Workers keep running after it returns."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await _connect_db(settings, stop)
    redis = core_redis.connect(settings.redis_url)
    node = node_name()
    cfg = DaemonConfig.from_env(os.environ)
    policy = PolicyConfig.from_env(os.environ)
    spawner = Spawner()
    ttl = lease_ttl(os.environ)
    when_stopped = on_stop(os.environ)
    sup = Supervisor(
        redis,
        spawner,
        policy,
        node,
        spawn_rate=cfg.spawn_rate,
        spawn_burst=cfg.spawn_burst,
        lease_ttl=ttl,
        placement_grace=max(1.0, 2 * cfg.pass_every),
    )
    sup.locale = settings.default_locale
    log.info("orchestrator node %s starting (pid %s)", node, os.getpid())
    if warning := ksm.startup_warning():
        log.warning("%s", warning)
    tasks: list[asyncio.Task[None]] = []
    try:
        # adoption does not wait for the zygote's imports (~1 s): live bots are watched first
        zygote = loop.create_task(spawner.ensure_started())
        await _until_done(stop, "adoption", sup.adopt_all)
        try:  # show what was adopted now, not after the zygote's warm-up (seconds under load)
            await heartbeat(redis, node, sup, cfg.heartbeat_every, alive=False)
        except Exception as exc:  # noqa: BLE001 - the heartbeat task publishes it in a moment
            log.warning("first status publish failed: %s: %s", type(exc).__name__, exc)
        await zygote
        feed = ChangeFeed()
        await feed.prime()
        last_full = [time.monotonic()]
        tasks = [
            loop.create_task(
                _every(
                    stop,
                    cfg.heartbeat_every,
                    "node heartbeat",
                    lambda: heartbeat(redis, node, sup, cfg.heartbeat_every),
                )
            ),
            loop.create_task(
                _every(
                    stop,
                    cfg.pass_every,
                    "change pass",
                    lambda: _changes(sup, feed, cfg.full_every, last_full),
                    from_start=True,
                )
            ),
            loop.create_task(_every(stop, sup.health.period, "heartbeat check", sup.check_health)),
            loop.create_task(_every(stop, ttl / 3, "lease renewal", sup.leases_round)),
            loop.create_task(control_loop(redis, sup, node, stop)),
        ]
        log.info("orchestrator node %s running", node)
        await stop.wait()
    finally:
        if when_stopped == HANDOVER:
            log.info("orchestrator node %s stopping; handing its bots over", node)
        else:
            log.info("orchestrator node %s stopping; workers keep running", node)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if when_stopped == HANDOVER:
            try:
                await hand_over(redis, sup)
            except Exception as exc:  # noqa: BLE001 - the leases then lapse after their TTL
                log.warning("handover failed: %s: %s", type(exc).__name__, exc)
        await sup.close()
        await spawner.close()
        await redis.aclose()
        await close_db()


async def _until_done(stop: asyncio.Event, what: str, step: Callable[[], Awaitable[None]]) -> None:
    while not stop.is_set():
        try:
            await step()
            return
        except Exception as exc:  # noqa: BLE001 - Redis or the database not there yet
            log.warning("%s failed (%s: %s); retrying", what, type(exc).__name__, exc)
            await asyncio.sleep(1.0)
