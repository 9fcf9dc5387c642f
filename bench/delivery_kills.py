"""Worker SIGKILLed at the worst moment of a delivery: duplicate DMs, lost deliveries, recovery.

Everything real on loopback (the sandbox in this process, a private redis-server, SQLite or a
new PostgreSQL database, the orchestrator with one worker per bot). Each round, on each bot
in parallel: a buyer's order is approved and applied as the webhook would; the sandbox creates
the delivery DM and holds the answer (the "hold" fault: Discord has the message, the worker
never hears back); the worker is SIGKILLed at that moment, before it can record the delivery;
the orchestrator restarts it and the entry is re-claimed. At the end the sandbox's own state
is counted: DMs with the order's items per buyer (duplicates), orders never delivered (lost).

    .venv/bin/python bench/delivery_kills.py [--kills 20] [--bots 4] [--postgres ADMIN_URL]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.storefront_delivery import _database, make_stores, pct, start_redis  # noqa: E402
from core.db import close_db, init_db  # noqa: E402
from ops.fleet_harness import STOREFRONT_ENV, Fleet, payment_services  # noqa: E402
from ops.migrations import apply  # noqa: E402
from sandbox.discord.client import DiscordSandbox  # noqa: E402
from sandbox.mercadopago.client import MercadoPagoSandboxClient  # noqa: E402
from sandbox.server import run_sandbox  # noqa: E402

ENV = {
    "VITRINE_DELIVERY_CLAIM_IDLE_S": "1",  # re-claim a dead worker's entry after 1 s
    # restart a killed worker at once, however often it is killed (no crash-loop back-off)
    "VITRINE_POLICY_HEALTHY_AFTER": "1",
    "VITRINE_POLICY_BASE_DELAY": "0.2",
    "VITRINE_POLICY_CRASHLOOP_COUNT": "10000",
    "VITRINE_POLICY_SUSPEND_AFTER": "10000",
    "LOG_LEVEL": "WARNING",
}
ROUND_TIMEOUT_S = 60.0


def mem_available_mb() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) // 1024
    return -1


async def wait_until(what: str, check, timeout: float) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.02)


async def one_round(fleet: Fleet, sb, dc, mpc, svc, store, n: int) -> dict:
    """One order on one bot, its worker killed right after Discord created the DM."""
    from fleet.states import InstanceState
    from shop.checkout import CheckoutRequest, checkout
    from shop.models import Order, Payment
    from shop.payments.sync import sync_payment

    bot, guild, tenant, inst, variation = store
    buyer = await dc.buyer(f"k{n}", guilds=[guild])
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
    dm = sb.discord_state.dm_channel(bot.user_id, buyer.id)
    await dc.add_fault_rule(bot, "hold", method="POST", path=f"/channels/{dm.id}/messages")
    payment = await Payment.get(order_id=order.id)
    await mpc.approve(int(payment.provider_payment_id))
    await sync_payment(svc, str(payment.id), "bench:webhook")

    async def dm_created() -> bool:
        return bool(sb.discord_state.channel_history(dm.id))

    await wait_until(f"DM of order {order.id}", dm_created, ROUND_TIMEOUT_S)
    recorded = await Order.get(id=order.id)
    worst = recorded.status == "paid" and recorded.delivery_message_id is None
    victim = await fleet.record(inst.id)
    os.kill(victim.pid, signal.SIGKILL)
    killed_at = time.monotonic()

    async def delivered() -> bool:
        return (await Order.get(id=order.id)).status == "delivered"

    await wait_until(f"order {order.id} delivered", delivered, ROUND_TIMEOUT_S)
    recovered = time.monotonic() - killed_at
    await fleet.wait_state(inst.id, InstanceState.ONLINE, timeout=ROUND_TIMEOUT_S)
    return {
        "order": order.id,
        "buyer": buyer.id,
        "dm": dm.id,
        "bot": bot,
        "recover_s": recovered,
        "worst": worst,
    }


async def run_bot(fleet, sb, dc, mpc, svc, store, rounds: int, first: int) -> list[dict]:
    out = []
    for i in range(rounds):
        out.append(await one_round(fleet, sb, dc, mpc, svc, store, first + i))
    return out


def count(sb, results: list[dict]) -> tuple[int, int, int]:
    """(duplicate DMs, DMs re-sent under the same nonce, missing DMs) from the sandbox."""
    state = sb.discord_state
    dupes = resent = missing = 0
    for r in results:
        dms = [
            m
            for m in state.channel_history(r["dm"])
            if m.author_id == r["bot"].user_id and m.embeds
        ]
        dupes += max(0, len(dms) - 1)
        missing += len(dms) == 0
        app = state.bots[r["bot"].application_id]
        posts = [
            q
            for q in app.stats.requests
            if q["method"] == "POST" and q["path"] == f"/channels/{r['dm']}/messages"
        ]
        resent += max(0, len(posts) - 1)
    return dupes, resent, missing


async def main(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="vitrine-bench-kills-"))
    redis_proc, redis_url = start_redis(work)
    db_url = await _database(args, work)
    await apply(db_url)
    await close_db()
    await init_db(db_url)
    per_bot = -(-args.kills // args.bots)
    mem_before = mem_available_mb()
    try:
        async with (
            run_sandbox("127.0.0.1", 0, mp_port=0) as sb,
            DiscordSandbox(sb.discord_base) as dc,
            MercadoPagoSandboxClient(sb.mp_api_base) as mpc,
        ):
            env = dict(STOREFRONT_ENV, MERCADOPAGO_API_BASE=sb.mp_api_base, **ENV)
            fleet = Fleet(work, db_url, redis_url, sb.discord_api_base, extra_env=env)
            svc = payment_services(sb, redis_url)
            try:
                stores = await make_stores(fleet, dc, args.bots, per_bot)
                fleet.start()
                from fleet.states import InstanceState

                for store in stores:
                    await fleet.wait_state(store[3].id, InstanceState.ONLINE, timeout=60)
                await asyncio.sleep(1.0)  # consumers subscribed after READY
                t0 = time.monotonic()
                async with asyncio.timeout(args.timeout):
                    batches = await asyncio.gather(
                        *(
                            run_bot(fleet, sb, dc, mpc, svc, store, per_bot, b * per_bot)
                            for b, store in enumerate(stores)
                        )
                    )
                wall = time.monotonic() - t0
                await asyncio.sleep(2.0)  # time for a late duplicate to show up
                results = [r for batch in batches for r in batch]
                dupes, resent, missing = count(sb, results)
                from shop.models import Order

                lost = (
                    await Order.filter(id__in=[r["order"] for r in results])
                    .exclude(status="delivered")
                    .count()
                )
                rec = [r["recover_s"] for r in results]
                print(
                    f"bots={args.bots} kills={len(results)} "
                    f"killed_at_worst_moment={sum(r['worst'] for r in results)} "
                    f"wall={wall:.1f}s cpus={os.cpu_count()} load={os.getloadavg()[0]:.1f} "
                    f"MemAvailable={mem_before}->{mem_available_mb()} MB db={db_url[:8]}"
                )
                print(
                    f"deliveries={len(results) - lost} duplicate_dms={dupes} "
                    f"lost_deliveries={lost + missing} resent_same_nonce={resent}"
                )
                print(
                    f"kill->delivered s: p50={pct(rec, 50):.1f} max={max(rec):.1f} "
                    f"mean={statistics.mean(rec):.1f}"
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
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--bots", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=300.0, help="give up after (s)")
    parser.add_argument(
        "--postgres",
        metavar="ADMIN_URL",
        default="",
        help="run on a new PostgreSQL database created through this URL",
    )
    asyncio.run(main(parser.parse_args()))
