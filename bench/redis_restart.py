"""Redis SIGKILLed and restarted (AOF) under a steady purchase load: payment → DM latency.

Everything real on loopback: the sandbox (Discord + Mercado Pago) in this process, a private
redis-server with `--appendonly yes`, a SQLite database, the orchestrator with one worker per
bot, and the reconciler's loop (`shop.payments.payment_reconciler.run_forever`, default 30 s
passes, with its delivery relay). Approvals are fired at a fixed rate and applied as the
portal's webhook handler does (`sync_payment`); in the middle Redis is killed with SIGKILL and
started again on the same port and AOF directory `--down` seconds later.

    .venv/bin/python bench/redis_restart.py [--bots 5] [--rate 5] [--seconds 30] [--down 1]

Prints orders paid, delivered and lost, payment → DM latency (p50/p99/max) overall and the
max for orders paid while Redis was down or coming back, and whether every worker survived.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._world import (  # noqa: E402
    approve_at_rate,
    hook_dm_times,
    make_orders,
    make_stores,
    pct,
    start_fleet,
    wait_dms,
    world,
)


async def main(args: argparse.Namespace) -> None:
    from shop.models import Order
    from shop.payments.payment_reconciler import run_forever

    per_bot = max(1, int(args.rate * args.seconds / args.bots))
    async with world("vitrine-bench-redis-", aof=True) as w:
        sb, dc, mpc, svc, fleet, redis = w.sb, w.dc, w.mpc, w.svc, w.fleet, w.redis
        stop = asyncio.Event()
        reconciler = asyncio.create_task(run_forever(svc, 30.0, stop))
        try:
            stores = await make_stores(fleet, dc, args.bots, per_bot)
            orders = await make_orders(svc, dc, stores, per_bot)
            await start_fleet(fleet, stores)
            pids = {inst.id: (await fleet.record(inst.id)).pid for *_, inst, _ in stores}
            dm_at = hook_dm_times(sb.discord_state)
            approved: dict[str, float] = {}
            load = asyncio.create_task(approve_at_rate(mpc, svc, orders, args.rate, approved))
            await asyncio.sleep(args.seconds / 2)
            killed_at = time.monotonic()
            redis.kill()
            await asyncio.sleep(args.down)
            redis.start()
            back_at = time.monotonic()
            await load
            await wait_dms(dm_at, len(orders), 60)
            lat = {b: dm_at[b] - approved[b] for b in approved if b in dm_at}
            # paid while Redis was down, or in the 2 s it took to come back
            hit = [v for b, v in lat.items() if killed_at <= approved[b] <= back_at + 2]
            delivered = await Order.filter(status="delivered").count()
            paid = len(approved)
            print(
                f"bots={args.bots} rate={args.rate}/s seconds={args.seconds} "
                f"redis down {back_at - killed_at:.1f}s (SIGKILL, AOF restart) "
                f"cpus={os.cpu_count()} load={os.getloadavg()[0]:.1f}"
            )
            print(f"orders paid={paid} delivered={delivered} DMs={len(lat)} lost={paid - len(lat)}")
            ms = sorted(v * 1000 for v in lat.values())
            print(f"payment->DM ms: p50={pct(ms, 50):.0f} p99={pct(ms, 99):.0f} max={max(ms):.0f}")
            print(
                f"paid during the outage: {len(hit)} orders, max payment->DM "
                f"{max(hit, default=0) * 1000:.0f} ms"
            )
            now = {}
            for iid in pids:
                for _ in range(3):
                    try:
                        now[iid] = (await fleet.record(iid)).pid
                        break
                    except Exception:  # noqa: BLE001 - the harness client's dead socket
                        await asyncio.sleep(0.2)
            same = sum(1 for iid, pid in pids.items() if now.get(iid) == pid)
            print(f"workers that survived the restart: {same}/{len(pids)}")
        finally:
            stop.set()
            await reconciler


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bots", type=int, default=5)
    parser.add_argument("--rate", type=float, default=5.0, help="approvals per second")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--down", type=float, default=1.0, help="seconds Redis stays dead")
    asyncio.run(main(parser.parse_args()))
