"""Database set-up (tortoise-orm): one config for every process, aerich and the tests."""

from __future__ import annotations

import asyncio
import os
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tortoise import Tortoise
from tortoise import context as tortoise_context
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.backends.base.executor import EXECUTOR_CACHE
from tortoise.warnings import TortoiseLoopSwitchWarning

MODEL_MODULES = ["core.models", "shop.models", "fleet.models"]


def _with_sqlite_defaults(url: str) -> str:
    """Wait for a locked database instead of failing at once; create the directory."""
    if not url.startswith("sqlite://") or url == "sqlite://:memory:":
        return url
    path = url[len("sqlite://") :].split("?", 1)[0]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if "busy_timeout" not in url:
        url += ("&" if "?" in url else "?") + "busy_timeout=10000"
    return url


def tortoise_config(
    database_url: str, with_aerich: bool = True, lean: bool = False
) -> dict[str, Any]:
    """The tortoise config dict for a database URL. `lean`: a bot worker's PostgreSQL pool,
    which keeps no connection while idle (`core.pg_pool`)."""
    models = list(MODEL_MODULES) + (["aerich.models"] if with_aerich else [])
    connection: str | dict[str, Any] = _with_sqlite_defaults(database_url)
    if database_url.startswith("sqlite://"):
        connection = expand_db_url(str(connection))
        connection["engine"] = "core.sqlite_backend"  # BEGIN IMMEDIATE: see that module
    elif database_url.startswith(("postgres://", "asyncpg://")):
        from core import pg_pool

        connection = expand_db_url(str(connection))
        # a full server (max_connections) makes a new connection wait, not fail
        connection["credentials"]["connect"] = pg_pool.connect_waiting
        if lean:
            connection["credentials"].update(pg_pool.lean_pool_options())
    return {
        "connections": {"default": connection},
        "apps": {"models": {"models": models, "default_connection": "default"}},
        "use_tz": True,
        "timezone": "UTC",
    }


def database_url_from_env() -> str:
    """DATABASE_URL as `core.settings` computes it, without needing the secrets."""
    url = os.environ.get("DATABASE_URL", "").strip()
    if url:
        return "postgres" + url[len("postgresql") :] if url.startswith("postgresql") else url
    data_dir = os.environ.get("DATA_DIR", "data").strip() or "data"
    return f"sqlite://{Path(data_dir) / 'vitrine.sqlite3'}"


def __getattr__(name: str) -> Any:
    # aerich reads `core.db.TORTOISE_ORM`; computed on access so the env is read late.
    if name == "TORTOISE_ORM":
        return tortoise_config(database_url_from_env())
    raise AttributeError(name)


# The database URL whose models `prepare_models` registered in this process image (a template
# process that forks workers); the first `init_db` with the same URL reuses that registry.
_prepared_url: str | None = None


def prepare_models(
    database_url: str, probe: bool | Callable[[], Awaitable[object]] = False, lean: bool = False
) -> None:
    """Build tortoise's model registry (metadata, relations, base queries) in a process that
    forks children afterwards (the worker zygote): each child's first `init_db` then only
    opens its own connection instead of rebuilding ~1 MB of metadata in copy-on-write memory.
    With `probe`, `SELECT 1` runs (and then `probe()` itself when it is a coroutine function:
    the caller's own warm-up queries) and the connection is closed again, so the driver's
    one-time set-up is also done here. No connection, socket or event loop survives this call.
    `lean`: the children's pool (see `tortoise_config`)."""
    global _prepared_url

    async def build() -> None:
        await init_db(database_url, lean=lean)
        if probe:
            ctx = tortoise_context.get_current_context()
            assert ctx is not None
            conn = ctx.connections.get("default")
            try:
                await asyncio.wait_for(conn.execute_query("SELECT 1"), 5)
                if callable(probe):
                    await probe()
            finally:
                await conn.close()
                ctx.connections.discard("default")

    asyncio.run(build())
    _prepared_url = database_url


async def init_db(database_url: str, lean: bool = False) -> None:
    """Connect tortoise for this process (`lean`: see `tortoise_config`)."""
    global _prepared_url
    if _prepared_url is not None:
        prepared, _prepared_url = _prepared_url, None  # only the first init_db reuses it
        if prepared == database_url and tortoise_context.get_current_context() is not None:
            return
    # tortoise caches compiled INSERT/UPDATE SQL keyed by connection name and table, not by
    # dialect; a process that re-inits on another backend (tests, tools) must drop it.
    EXECUTOR_CACHE.clear()
    # One database per process: web requests and background tasks run in other asyncio
    # contexts than start-up, so the context is also the process-wide fallback.
    previous = tortoise_context.get_current_context()
    if previous is not None:
        with warnings.catch_warnings():
            # A context left open by code that ran on an earlier event loop: closing it is
            # exactly the intended clean-up.
            warnings.simplefilter("ignore", TortoiseLoopSwitchWarning)
            await previous.close_connections()
    await Tortoise.init(
        config=tortoise_config(database_url, lean=lean), _enable_global_fallback=True
    )


async def close_db() -> None:
    await Tortoise.close_connections()


async def release_db() -> None:
    """Close this process's database connection now (the next query opens one again): a bot
    worker done with its start-up reads. PostgreSQL: the pool's connections. SQLite: the
    connection, its thread and its lock on the database's `-shm` file (a WAL connection holds
    one as long as it is open, and Linux walks every holder's lock on each lock operation:
    2,000 idle workers with a connection each slowed every transaction of every process)."""
    ctx = tortoise_context.get_current_context()
    conn = ctx.connections.get("default") if ctx is not None else None
    if conn is not None and (
        getattr(conn, "_pool", None) is not None or getattr(conn, "_connection", None) is not None
    ):
        await conn.close()


async def ping_db() -> tuple[bool, str]:
    """(reachable, detail) for health checks."""
    try:
        conn = Tortoise.get_connection("default")
        await conn.execute_query("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure means "unreachable"
        return False, type(exc).__name__
    return True, "ok"
