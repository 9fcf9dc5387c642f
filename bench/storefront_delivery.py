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
import statistics
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
    per_bot = max(1, int(args.rate * args.seconds / args.bots))
    async with world("vitrine-bench-sf-", postgres=args.postgres) as w:
        stores = await make_stores(w.fleet, w.dc, args.bots, per_bot)
        orders = await make_orders(w.svc, w.dc, stores, per_bot)
        await start_fleet(w.fleet, stores)
        dm_at = hook_dm_times(w.sb.discord_state)
        t0 = time.monotonic()
        approved: dict[str, float] = {}
        await approve_at_rate(w.mpc, w.svc, orders, args.rate, approved)
        await wait_dms(dm_at, len(orders), 30)
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
