"""Payment approved → DM received: latency at a steady approval rate across many bots.

Runs everything for real on loopback: the sandbox (Discord + Mercado Pago) in this process,
a private redis-server, a SQLite database, and the orchestrator with one worker process per
bot. Orders are created (and their PIX charged) through `shop.checkout` beforehand; then
approvals are fired at a fixed rate: each approval is done in the MP sandbox and applied as
the portal's webhook handler would (`sync_payment`: GET payment, order paid, ledger, XADD to
the worker's delivery stream). The clock stops when the sandbox stores the DM.

    .venv/bin/python bench/storefront_delivery.py [--bots 20] [--rate 20] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.db import close_db, init_db  # noqa: E402
from ops.fleet_harness import STOREFRONT_ENV, Fleet, payment_services  # noqa: E402
from ops.migrations import apply  # noqa: E402
from ops.process_tools import free_port  # noqa: E402
from sandbox.discord.client import DiscordSandbox  # noqa: E402
from sandbox.mercadopago.client import MercadoPagoSandboxClient  # noqa: E402
from sandbox.server import run_sandbox  # noqa: E402


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            shutil.which("redis-server") or "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(0.3)
    return proc, f"redis://127.0.0.1:{port}/0"


async def make_stores(fleet: Fleet, dc: DiscordSandbox, bots: int, per_bot: int) -> list:
    from fleet.models import BotInstance
    from shop.models import Account, Product, Tenant, Variation
    from shop.stock import add_stock

    stores = []
    for n in range(bots):
        bot = await dc.create_bot(f"Loja{n}")
        guild = await dc.create_guild(f"S{n}", channels=["loja"], bots=[bot])
        owner = await Account.create(discord_id=uuid.uuid4().hex[:18], username=f"s{n}")
        tenant = await Tenant.create(owner=owner, name=f"Loja{n}", guild_id=guild.id)
        inst = await BotInstance.create(
            tenant=tenant, name=f"Loja{n}", token_enc=fleet.vault.encrypt(bot.token)
        )
        product = await Product.create(tenant=tenant, name="Key")
        variation = await Variation.create(
            tenant=tenant, product=product, name="v", price_cents=1990
        )
        await add_stock(
            fleet.vault,
            tenant.id,
            variation.id,
            "\n".join(f"KEY-{n}-{i}" for i in range(per_bot)),
            "bench",
            hash_key=fleet.stock_hash_key,
        )
        stores.append((bot, guild, tenant, inst, variation))
    return stores


async def make_orders(svc, dc, stores, per_bot: int) -> list[tuple[int, str, str]]:
    """(order id, buyer id, bot user id) for every order, interleaved across bots."""
    from shop.checkout import CheckoutRequest, checkout

    out = []
    for i in range(per_bot):
        for bot, guild, tenant, inst, variation in stores:
            buyer = await dc.buyer(f"b{i}", guilds=[guild])
            order, _ = await checkout(
                svc,
                CheckoutRequest(
                    tenant.id,
                    inst.id,
                    variation.id,
                    1,
                    buyer.id,
                    key=uuid.uuid4().hex,
                    guild_id=guild.id,
                    channel_id=guild.channel("loja"),
                ),
            )
            out.append((order.id, buyer.id, bot.user_id))
    return out


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


async def approve_all(mpc, svc, orders, rate: float) -> dict[str, float]:
    from shop.models import Payment
    from shop.payments.sync import sync_payment

    approved: dict[str, float] = {}
    start = time.monotonic()

    async def one(i: int, order_id: int, buyer_id: str) -> None:
        await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
        payment = await Payment.get(order_id=order_id)
        await mpc.approve(int(payment.provider_payment_id))
        approved[buyer_id] = time.monotonic()
        for attempt in range(5):  # as MP would re-send the webhook after an error
            try:
                await sync_payment(svc, str(payment.id), "bench:webhook")
                return
            except Exception as exc:  # noqa: BLE001 - e.g. SQLite "database is locked"
                print(f"sync retry {attempt + 1}: {exc}", file=sys.stderr)
                await asyncio.sleep(0.2)

    await asyncio.gather(*(one(i, oid, buyer) for i, (oid, buyer, _) in enumerate(orders)))
    return approved


async def _database(args: argparse.Namespace, work: Path) -> str:
    """A fresh database: SQLite in the temp dir, or a new PostgreSQL database (--postgres)."""
    if not args.postgres:
        return f"sqlite://{work / 'bench.sqlite3'}"
    import asyncpg

    name = f"vitrine_bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(args.postgres)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return f"{args.postgres.rsplit('/', 1)[0]}/{name}"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


async def main(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="vitrine-bench-sf-"))
    redis_proc, redis_url = start_redis(work)
    db_url = await _database(args, work)
    await apply(db_url)
    await close_db()
    await init_db(db_url)
    per_bot = max(1, int(args.rate * args.seconds / args.bots))
    try:
        async with (
            run_sandbox("127.0.0.1", 0, mp_port=0) as sb,
            DiscordSandbox(sb.discord_base) as dc,
            MercadoPagoSandboxClient(sb.mp_api_base) as mpc,
        ):
            env = dict(STOREFRONT_ENV, MERCADOPAGO_API_BASE=sb.mp_api_base, LOG_LEVEL="WARNING")
            fleet = Fleet(work, db_url, redis_url, sb.discord_api_base, extra_env=env)
            svc = payment_services(sb, redis_url)
            try:
                stores = await make_stores(fleet, dc, args.bots, per_bot)
                orders = await make_orders(svc, dc, stores, per_bot)
                fleet.start()
                from fleet.states import InstanceState

                for _, _, _, inst, _ in stores:
                    await fleet.wait_state(inst.id, InstanceState.ONLINE, timeout=60)
                await asyncio.sleep(1.0)  # consumers subscribed after READY
                dm_at = hook_dm_times(sb.discord_state)
                t0 = time.monotonic()
                approved = await approve_all(mpc, svc, orders, args.rate)
                deadline = time.monotonic() + 30
                while len(dm_at) < len(orders) and time.monotonic() < deadline:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
                wall = time.monotonic() - t0
                lat = [(dm_at[b] - approved[b]) * 1000 for b in approved if b in dm_at]
                print(
                    f"bots={args.bots} rate={args.rate}/s approvals={len(orders)} "
                    f"delivered={len(lat)} wall={wall:.1f}s cpus={os.cpu_count()} "
                    f"load={os.getloadavg()[0]:.1f}"
                )
                print(
                    f"approved->DM ms: p50={pct(lat, 50):.0f} p90={pct(lat, 90):.0f} "
                    f"p99={pct(lat, 99):.0f} max={max(lat):.0f} "
                    f"mean={statistics.mean(lat):.0f}"
                )
            finally:
                await fleet.cleanup()
                await svc.gateway.aclose()
                await svc.redis.aclose()
    finally:
        await close_db()
        if args.postgres:
            import asyncpg

            conn = await asyncpg.connect(args.postgres)
            await conn.execute(f'DROP DATABASE IF EXISTS "{db_url.rsplit("/", 1)[1]}" WITH (FORCE)')
            await conn.close()
        redis_proc.terminate()
        redis_proc.wait(10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bots", type=int, default=20)
    parser.add_argument("--rate", type=float, default=20.0, help="approvals per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--postgres",
        metavar="ADMIN_URL",
        default="",
        help="run on a new PostgreSQL database created through this URL "
        "(e.g. postgres://postgres@127.0.0.1:5432/postgres)",
    )
    asyncio.run(main(parser.parse_args()))
