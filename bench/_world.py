"""Shared scaffolding for the storefront benches (bench-only; `tests/` must not import it).

`world()` is an async context manager that brings up, for real on loopback, what the
storefront benches run on and tears it all down again:

- a private redis-server (`Redis`, in a temp dir; AOF on request),
- a fresh database: SQLite in the temp dir, or a new PostgreSQL database created (and
  dropped afterwards) through an admin URL (`--postgres`), migrated and opened,
- the sandbox (Discord + Mercado Pago) in this process with its two clients,
- the orchestrator's `Fleet` (not started) and the payment services.

The small helpers build stores and orders, start the fleet, approve payments at a steady
rate, record DM times and compute percentiles; each bench keeps its own measuring logic.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Only light imports at module level: worker_pages forks a worker from its own process and
# counts its pages, so what this module loads must not change what that bench measures.
from ops.process_tools import RedisServer as Redis  # noqa: E402
from ops.process_tools import redis_argv as redis_argv  # noqa: E402 (benches import it here)
from ops.purchase_load import approve_at_rate as approve_at_rate  # noqa: E402
from ops.purchase_load import checkout_order as checkout_order  # noqa: E402
from ops.purchase_load import make_orders as make_orders  # noqa: E402
from ops.purchase_load import make_stores as make_stores  # noqa: E402

if TYPE_CHECKING:
    from ops.fleet_harness import Fleet
    from sandbox.discord.client import DiscordSandbox
    from sandbox.mercadopago.client import MercadoPagoSandboxClient


async def create_database(admin_url: str, work: Path) -> str:
    """A fresh database: SQLite in `work`, or a new PostgreSQL database through `admin_url`."""
    if not admin_url:
        return f"sqlite://{work / 'bench.sqlite3'}"
    import asyncpg

    name = f"vitrine_bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(admin_url)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return f"{admin_url.rsplit('/', 1)[0]}/{name}"


async def drop_database(admin_url: str, db_url: str) -> None:
    """Drop what `create_database` made on PostgreSQL (SQLite goes with the temp dir)."""
    if not admin_url:
        return
    import asyncpg

    conn = await asyncpg.connect(admin_url)
    await conn.execute(f'DROP DATABASE IF EXISTS "{db_url.rsplit("/", 1)[1]}" WITH (FORCE)')
    await conn.close()


@dataclass
class World:
    work: Path
    redis: Redis
    db_url: str
    sb: Any  # the running sandbox (run_sandbox)
    dc: DiscordSandbox
    mpc: MercadoPagoSandboxClient
    fleet: Fleet
    svc: Any  # payment services (payment_services)

    @property
    def redis_url(self) -> str:
        return self.redis.url


@asynccontextmanager
async def world(
    prefix: str,
    *,
    postgres: str = "",
    aof: bool = False,
    extra_env: dict[str, str] | None = None,
) -> AsyncIterator[World]:
    """Redis, a migrated database, the sandbox, a Fleet (not started) and payment services."""
    from core.db import close_db, init_db
    from ops.fleet_harness import STOREFRONT_ENV, Fleet, payment_services
    from ops.migrations import apply
    from sandbox.discord.client import DiscordSandbox
    from sandbox.mercadopago.client import MercadoPagoSandboxClient
    from sandbox.server import run_sandbox

    work = Path(tempfile.mkdtemp(prefix=prefix))
    redis = Redis(work, aof=aof)
    try:
        redis.start()
        db_url = await create_database(postgres, work)
        try:
            await apply(db_url)
            await close_db()
            await init_db(db_url)
            async with (
                run_sandbox("127.0.0.1", 0, mp_port=0) as sb,
                DiscordSandbox(sb.discord_base) as dc,
                MercadoPagoSandboxClient(sb.mp_api_base) as mpc,
            ):
                env = {
                    **STOREFRONT_ENV,
                    "MERCADOPAGO_API_BASE": sb.mp_api_base,
                    "LOG_LEVEL": "WARNING",
                    **(extra_env or {}),
                }
                fleet = Fleet(work, db_url, redis.url, sb.discord_api_base, extra_env=env)
                svc = payment_services(sb, redis.url)
                try:
                    yield World(work, redis, db_url, sb, dc, mpc, fleet, svc)
                finally:
                    await fleet.cleanup()
                    await svc.gateway.aclose()
                    await svc.redis.aclose()
        finally:
            await close_db()
            await drop_database(postgres, db_url)
    finally:
        redis.stop()
        shutil.rmtree(work, ignore_errors=True)


async def start_fleet(fleet: Fleet, stores: list, *, settle: float = 1.0) -> None:
    """Start the orchestrator, wait for every store's worker online, let consumers subscribe."""
    from fleet.states import InstanceState

    fleet.start()
    for _, _, _, inst, _ in stores:
        await fleet.wait_state(inst.id, InstanceState.ONLINE, timeout=60)
    await asyncio.sleep(settle)  # consumers subscribed after READY


def hook_dm_times(state) -> dict[str, float]:
    """Record when the sandbox stores each user's first DM (monotonic clock)."""
    seen: dict[str, float] = {}
    original = state.add_message

    def add_message(channel, author_id, **fields):
        msg = original(channel, author_id, **fields)
        if channel.guild_id is None:
            for user in channel.recipients:
                if user != author_id:
                    seen.setdefault(user, time.monotonic())
        return msg

    state.add_message = add_message
    return seen


async def wait_dms(dm_at: dict[str, float], expected: int, timeout: float) -> None:  # noqa: ASYNC109
    """Wait until `expected` buyers have their DM, or `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while len(dm_at) < expected and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]
