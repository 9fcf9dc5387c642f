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
import signal
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._world import checkout_order, make_stores, pct, start_fleet, world  # noqa: E402
from ops.fleet_harness import Fleet  # noqa: E402

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
    from shop.models import Order, Payment
    from shop.payments.sync import sync_payment

    bot, _, _, inst, _ = store
    order, buyer = await checkout_order(svc, dc, store, f"k{n}")
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
    per_bot = -(-args.kills // args.bots)
    async with world("vitrine-bench-kills-", postgres=args.postgres, extra_env=ENV) as w:
        mem_before = mem_available_mb()
        sb, dc, mpc, svc, fleet = w.sb, w.dc, w.mpc, w.svc, w.fleet
        stores = await make_stores(fleet, dc, args.bots, per_bot)
        await start_fleet(fleet, stores)
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
            f"MemAvailable={mem_before}->{mem_available_mb()} MB db={w.db_url[:8]}"
        )
        print(
            f"deliveries={len(results) - lost} duplicate_dms={dupes} "
            f"lost_deliveries={lost + missing} resent_same_nonce={resent}"
        )
        print(
            f"kill->delivered s: p50={pct(rec, 50):.1f} max={max(rec):.1f} "
            f"mean={statistics.mean(rec):.1f}"
        )


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
