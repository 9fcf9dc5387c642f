"""PostgreSQL connections for thousands of processes on one server.

Every bot worker is a process with its own connection pool, and PostgreSQL serves
`max_connections` at once (100 by default; each one a server process). A worker that kept one
connection open for its life (tortoise's default pool keeps at least one) made the 101st bot
of a PostgreSQL fleet fail at start, again and again, while the first hundred sat on idle
connections (measured: 94 of 300 bots online, the rest in crash loops; `docs/benchmarks.md`).

So, on PostgreSQL:
- a worker's pool opens no connection until a query needs one, holds at most
  `VITRINE_WORKER_DB_CONNECTIONS` (2), and closes a connection idle for
  `VITRINE_WORKER_DB_IDLE_S` (1 s): an idle bot holds none (`lean_pool_options`);
- every process's new connection waits while the server answers "too many connections"
  (SQLSTATE 53300, for the server or for the role) or "starting up" (57P03), retrying with
  jittered backoff for up to `VITRINE_DB_CONNECT_WAIT_S` (30 s: a worker waits less than the
  orchestrator's stuck window, 60 s), instead of failing the request or the worker at once
  (`connect_waiting`). A full server costs a wait, not a crash.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import TYPE_CHECKING, Any

from core.tuning import tuning_float, tuning_int

if TYPE_CHECKING:
    import asyncpg

log = logging.getLogger("db")
WORKER_APPLICATION = "vitrine-worker"
FIRST_DELAY_S = 0.05
MAX_DELAY_S = 2.0


def connect_wait_s() -> float:
    """VITRINE_DB_CONNECT_WAIT_S: how long a new connection waits for a free server slot."""
    return tuning_float("VITRINE_DB_CONNECT_WAIT_S", 30.0, 0.0, 3600.0)


def lean_pool_options() -> dict[str, Any]:
    """A bot worker's pool (tortoise credentials; `max_inactive_connection_lifetime` goes to
    asyncpg's pool): nothing open at start, at most a few, none kept while idle."""
    return {
        "application_name": WORKER_APPLICATION,  # pg_stat_activity tells the bots' apart
        "minsize": 0,
        "maxsize": tuning_int("VITRINE_WORKER_DB_CONNECTIONS", 2, 1, 20),
        "max_inactive_connection_lifetime": tuning_float(
            "VITRINE_WORKER_DB_IDLE_S", 1.0, 0.1, 3600.0
        ),
    }


def check_tuning() -> None:
    """Parse the knobs now (a bad value stops the process at start, `ExitCode.CONFIG`)."""
    connect_wait_s()
    lean_pool_options()


async def connect_waiting(*args: Any, **kwargs: Any) -> asyncpg.Connection:
    """`asyncpg.connect`, waiting while the server has no free connection slot (asyncpg's
    pool calls it for each new connection: `create_pool(connect=...)`)."""
    import asyncpg  # here: the module is imported where only SQLite is used, too

    wait_errors = (asyncpg.TooManyConnectionsError, asyncpg.CannotConnectNowError)
    deadline = time.monotonic() + connect_wait_s()
    delay = FIRST_DELAY_S
    waited = False
    while True:
        try:
            conn = await asyncpg.connect(*args, **kwargs)
        except wait_errors as exc:
            pause = delay * (0.5 + random.random())  # noqa: S311 - jitter, not a secret
            if time.monotonic() + pause > deadline:
                log.error("PostgreSQL still refuses a connection: %s", exc)
                raise
            if not waited:
                log.warning("PostgreSQL has no free connection (%s): waiting for one", exc)
                waited = True
            await asyncio.sleep(pause)
            delay = min(delay * 2, MAX_DELAY_S)
            continue
        if waited:
            log.info("PostgreSQL connection made after waiting")
        return conn
