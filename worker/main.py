"""Entry of a worker process: detach from the parent, load the instance, run the bot, exit.

The token comes from the database through the vault (never argv or the environment) and is
registered for log redaction before anything can log it.
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import logging
import logging.handlers
import os
import signal
import sys
import time
from pathlib import Path

from core import pg_pool
from core import redis as core_redis
from core.db import close_db, init_db, release_db
from core.errors import ConfigError
from core.i18n import t
from core.logging import JsonFormatter, register_secret
from core.settings import Settings, load_settings
from core.tuning import tuning_float, tuning_int
from core.vault import TokenVault, VaultError
from fleet import keys, start_data
from fleet.crashpolicy import PolicyConfig
from fleet.exitcodes import ExitCode
from fleet.fencing import Fence
from fleet.leases import lease_ttl
from fleet.models import BotInstance
from fleet.runtime import RuntimeStore
from worker import extensions, optional_intents
from worker.bot import WorkerContext, build_bot, mark_ready
from worker.fence_guard import FenceGuard
from worker.lifecycle import Lifecycle, Outcome
from worker.resume import SessionKeeper, SessionStore
from worker.resume import install as install_resume

log = logging.getLogger("worker")
WORKER_REDIS_CONNECTIONS = 3

LOG_MAX_BYTES = 1024 * 1024  # per instance: 500 bots must not fill the disk
LOG_BACKUPS = 3


def instance_log_dir(log_dir: Path) -> Path:
    return log_dir / "instances"


def detach(instance_id: int, log_dir: Path) -> None:
    """Own session, no inherited stdio: the worker outlives the orchestrator, its pipes and
    its process group (a supervisord stop or a terminal ^C reaches only the parent)."""
    if os.getsid(0) != os.getpid():
        os.setsid()
    folder = instance_log_dir(log_dir)
    folder.mkdir(parents=True, exist_ok=True)
    devnull = os.open(os.devnull, os.O_RDWR)
    err = os.open(
        folder / f"{instance_id}.stderr.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600
    )
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.dup2(err, 2)
    os.close(devnull)
    os.close(err)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    # `kill -USR1 <pid>` (and the orchestrator, before replacing a stuck worker) writes every
    # thread's stack to <id>.stderr.log
    faulthandler.register(signal.SIGUSR1, all_threads=True)


class _InstanceFilter(logging.Filter):
    def __init__(self, instance_id: int) -> None:
        super().__init__()
        self.instance_id = instance_id

    def filter(self, record: logging.LogRecord) -> bool:
        record.instance_id = self.instance_id
        return True


def setup_instance_logging(instance_id: int, settings: Settings) -> None:
    """JSON lines to logs/instances/<id>.log, rotated, secrets redacted by the formatter."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.handlers.RotatingFileHandler(
        instance_log_dir(settings.log_dir) / f"{instance_id}.log",
        maxBytes=LOG_MAX_BYTES,
        backupCount=LOG_BACKUPS,
        encoding="utf-8",
    )
    handler.setFormatter(JsonFormatter("worker"))
    handler.addFilter(_InstanceFilter(instance_id))
    root.addHandler(handler)
    apply_log_levels(settings)


def apply_log_levels(settings: Settings) -> None:
    """The worker's log levels. `setLevel` clears the cache of every logger in the process,
    touching all of them: a worker forked from a zygote that set the same levels skips it."""
    level: int = logging.getLevelName(settings.log_level)  # "INFO" -> 20
    wanted = [(logging.getLogger(), level)] + [
        (logging.getLogger(name), max(logging.INFO, level))
        for name in ("disnake", "tortoise", "aiosqlite", "asyncio")
    ]
    for logger, value in wanted:
        if logger.level != value:
            logger.setLevel(value)


async def _write_exit(store: RuntimeStore, instance_id: int, outcome: Outcome) -> None:
    """Leave the exit code where an orchestrator that adopted us (not our parent) finds it."""
    if outcome.message:
        await store.set_last_error(instance_id, outcome.message, outcome.error_code or "")
    pipe = store.redis.pipeline(transaction=True)
    if outcome.session is not None:
        pipe.hset(
            keys.session_limit(instance_id),
            mapping={
                "remaining": outcome.session[0],
                "reset_at": f"{outcome.session[1]:.3f}",
                "read_at": f"{time.time():.3f}",
            },
        )
    pipe.hset(
        keys.exit_info(instance_id),
        mapping={
            "pid": os.getpid(),
            "code": int(outcome.code),
            "at": f"{time.time():.3f}",
            "detail": outcome.error_code or "",
        },
    )
    pipe.expire(keys.exit_info(instance_id), keys.EXIT_INFO_TTL)
    await pipe.execute()


async def serve(
    instance_id: int,
    settings: Settings,
    policy: PolicyConfig,
    lease: str | None = None,
    ttl: float = 30.0,
    start: object = None,
) -> Outcome:
    # A worker's commands are short (its one blocking read has a connection of its own,
    # worker.extensions.storefront.delivery_stream): a few connections serve them, and a
    # start that opened one per concurrent command (~7: a connect, HELLO and PING each) spent
    # a tenth of its CPU on them (issue 14)
    redis = core_redis.connect(settings.redis_url, max_connections=WORKER_REDIS_CONNECTIONS)
    store = RuntimeStore(redis)
    locale = settings.default_locale
    outcome = Outcome(ExitCode.CRASH, "crash", t("runtime.error.crash", locale, detail="start"))
    try:
        # tortoise is set up as the zygote left it: no connection is opened until a query
        await init_db(settings.database_url, lean=True)
        # the start row the orchestrator sent with the spawn (fleet.start_data), else read
        if (row := start_data.checked(start)) is None:
            row = await start_data.start_row(instance_id)
            if row is None:
                log.warning("instance %s no longer exists", instance_id)
                return (outcome := Outcome(ExitCode.CLEAN))
            # done with the database until a buyer or a delivery needs it: on PostgreSQL a
            # bot holds no connection while idle (core.pg_pool): 2,000 bots fit
            await release_db()
        try:
            token = TokenVault(settings.token_encryption_keys).decrypt(row["token_enc"])
        except VaultError:
            return (outcome := Outcome(ExitCode.CONFIG, "vault", t("runtime.error.vault", locale)))
        register_secret(token.reveal())
        guild_id = row["tenant__guild_id"]  # the only guild this bot serves (worker.guild_scope)
        ctx = WorkerContext(
            instance_id,
            row["tenant_id"],
            settings,
            redis,
            store,
            locale,
            store_guild_id=int(guild_id) if guild_id else None,
            fencing=FenceGuard(Fence.from_lease(instance_id, lease)),
            bot_public=row["bot_public"],
        )
        modules = extensions.enabled(os.environ)
        bot = build_bot(ctx, modules, guild_ready_timeout())
        life = Lifecycle(
            instance_id,
            store,
            beat_every=_beat_every(policy),
            gateway_grace=policy.stuck_after,
            locale=locale,
            lease=lease,
            lease_ttl=ttl,
            guard=ctx.fencing,
        )
        mark_ready(bot, life.on_ready)
        # RESUME the session a predecessor left (crash, stuck kill, adoption), if any
        sessions = SessionStore(redis, instance_id)
        plan = await sessions.load() if resume_enabled() else None
        resume_state = install_resume(bot, redis, plan)
        life.keeper = SessionKeeper(redis, instance_id, resume_state)
        optional = optional_intents.declared(modules)
        stored = plan.intents if plan is not None else None
        bot.before_connect.append(lambda: optional_intents.settle(bot, optional, stored))
        outcome = await life.run(bot, token.reveal())
        if outcome.code == ExitCode.CLEAN and not life.handing_over:
            await sessions.clear()  # disnake closed with 1000: Discord ended the session
        return outcome
    except Exception:
        log.exception("worker failed")
        return outcome
    finally:
        try:
            await asyncio.wait_for(_write_exit(store, instance_id, outcome), 5)
        except Exception as exc:  # noqa: BLE001 - Redis down: the parent still sees our status
            log.warning("could not record the exit in Redis: %s", type(exc).__name__)
        for closing in (redis.aclose(), close_db()):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(closing, 3)


async def warm_queries() -> None:
    """The queries every worker runs at start (its start row, the application's
    `bot_public`), matching nothing: the zygote runs them once through
    `core.db.prepare_models(..., probe=warm_queries)` so their code paths are warm for all."""
    await asyncio.wait_for(start_data.start_row(0), 5)
    await asyncio.wait_for(BotInstance.filter(id=0).update(bot_public=None), 5)


def _beat_every(policy: PolicyConfig) -> float:
    """A few beats per stuck window, at most every 10 s (VITRINE_WORKER_HEARTBEAT_S overrides)."""
    return tuning_float(
        "VITRINE_WORKER_HEARTBEAT_S", max(0.2, min(10.0, policy.stuck_after / 4)), 0.05, 3600.0
    )


def guild_ready_timeout() -> float:
    """How long READY waits for the guilds (VITRINE_GUILD_READY_TIMEOUT, default 0.5 s)."""
    return tuning_float("VITRINE_GUILD_READY_TIMEOUT", 0.5, 0.0, 60.0)


def resume_enabled() -> bool:
    """VITRINE_WORKER_RESUME (1 default, 0 off): RESUME a stored session at start; 0 makes
    every start log in (IDENTIFY), as before issue 14 (a switch for an operator in doubt)."""
    return tuning_int("VITRINE_WORKER_RESUME", 1, 0, 1) == 1


def check_tuning(policy: PolicyConfig) -> None:
    """Parse every tuning knob a worker reads, its extensions' too, before anything runs:
    `TuningError` names the bad one and the worker exits with `ExitCode.CONFIG`."""
    _beat_every(policy)
    guild_ready_timeout()
    resume_enabled()
    pg_pool.check_tuning()
    extensions.check_tuning(os.environ)


def run_instance(instance_id: int, lease: str | None = None, start: object = None) -> int:
    """Run one instance in this process; returns the exit code (an `ExitCode`). `lease`: the
    "node:token" the orchestrator acquired for this process (None: run without one); `start`:
    its start row as the orchestrator read it (fleet.start_data; None: read it here)."""
    try:
        settings = load_settings()
        policy = PolicyConfig.from_env(os.environ)
        ttl = lease_ttl(os.environ)
        check_tuning(policy)
    except (ConfigError, ValueError) as exc:
        print(f"configuration error: {exc}", file=sys.stderr, flush=True)
        return ExitCode.CONFIG
    instance_log_dir(settings.log_dir).mkdir(parents=True, exist_ok=True)
    setup_instance_logging(instance_id, settings)
    log.info("worker pid %s starting", os.getpid())
    # Not asyncio.run(): its final "cancel every task and wait" must not keep a finished
    # worker alive; the process ends right after.
    loop = asyncio.new_event_loop()
    outcome = loop.run_until_complete(serve(instance_id, settings, policy, lease, ttl, start))
    log.info("worker exiting with %s", outcome.code.name)
    logging.shutdown()
    return int(outcome.code)
