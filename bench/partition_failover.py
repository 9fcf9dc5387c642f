"""Failover between real separate hosts: node A cut off the network (its veth down) or paused
(SIGSTOP on its orchestrator and workers) for 3 x the lease TTL while purchases are approved.

Two orchestrator nodes, each in its own network namespace (`ops/netns_world.py`), one
PostgreSQL database (required: several hosts cannot share SQLite), a private Redis and the
sandbox in this process; orders approved at a fixed rate as the webhook handler does. Needs
root and iproute2.

    .venv/bin/python bench/partition_failover.py [--ttl 3] [--bots 4] [--orders-per-bot 5]
        [--rate 1.5] [--postgres postgres://postgres@127.0.0.1:5432/postgres]

Prints, for each fault: how long until node B ran all of A's bots (from the fault's start),
how long A's workers took to stop once the link returned or the node woke, payment -> DM
latency for the orders paid during the fault and overall, lost and duplicate DMs, and the
bots' IDENTIFY counts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._world import hook_dm_times, pct, wait_dms, world  # noqa: E402


async def takeover_time(w, on_a: dict[int, int], t0: float) -> float:
    """Seconds from `t0` until node B runs every one of A's bots (polled every 0.1 s)."""
    from fleet.states import InstanceState

    while True:
        recs = [await w.b.record(i) for i in on_a]
        if all(r and r.node == w.b.node and r.state == InstanceState.ONLINE for r in recs):
            return time.monotonic() - t0
        await asyncio.sleep(0.1)


async def run(kind: str, args: argparse.Namespace) -> None:
    from ops.fleet_harness import node_processes
    from ops.netns_world import two_hosts, wait_gone

    async with world(f"vitrine-bench-{kind}-", postgres=args.postgres) as base:
        hosts_dir = base.work / "hosts"
        hosts_dir.mkdir()
        async with two_hosts(
            hosts_dir,
            base.db_url,
            base.sb,
            base.dc,
            base.mpc,
            ttl=args.ttl,
            bots=args.bots,
            orders_per_bot=args.orders_per_bot,
            rate=args.rate,
        ) as w:
            dm_at = hook_dm_times(base.sb.discord_state)
            on_a = await w.on_a()
            frozen: list[int] = []
            load = w.load()
            await asyncio.sleep(2.0)
            t0 = time.monotonic()
            if kind == "cut":
                w.net.cut("a")
            else:
                frozen = node_processes(w.a.node)
                for pid in frozen:
                    os.kill(pid, signal.SIGSTOP)
            try:
                took = await asyncio.wait_for(takeover_time(w, on_a, t0), 3 * args.ttl + 60)
                await asyncio.sleep(max(0.0, t0 + 3 * args.ttl - time.monotonic()))
            finally:
                if kind == "cut":
                    w.net.restore("a")
                for pid in frozen:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGCONT)
            back = time.monotonic()
            left = await wait_gone(list(on_a.values()), 60)
            stopped = time.monotonic() - back
            await load
            await wait_dms(dm_at, len(w.orders), 60)
            lat = {b: dm_at[b] - w.approved[b] for b in w.approved if b in dm_at}
            during = [v for b, v in lat.items() if t0 <= w.approved[b] <= back]
            dms = [len(await w.dc.dms(buyer, None)) for _, buyer, _ in w.orders]
            infos = [await w.dc.bot_info(s[0]) for s in w.stores]
            ms = sorted(v * 1000 for v in lat.values())
            print(
                f"{kind}: ttl={args.ttl}s fault={back - t0:.1f}s bots={len(w.stores)} "
                f"(A ran {len(on_a)}) orders={len(w.orders)} cpus={os.cpu_count()} "
                f"load={os.getloadavg()[0]:.1f}"
            )
            print(
                f"  B ran A's bots {took:.1f}s after the fault began; A's workers stopped "
                f"{stopped:.1f}s after it ended ({len(left)} still running)"
            )
            print(
                f"  payment->DM ms: p50={pct(ms, 50):.0f} max={max(ms):.0f}; paid during "
                f"the fault: {len(during)}, max {max(during, default=0) * 1000:.0f} ms"
            )
            print(
                f"  DMs lost={sum(1 for n in dms if n == 0)} duplicated="
                f"{sum(1 for n in dms if n > 1)}; IDENTIFYs {[i['identify_count'] for i in infos]}"
            )


async def main(args: argparse.Namespace) -> None:
    from ops.netns_harness import unavailable

    reason = unavailable()
    if reason:
        sys.exit(f"cannot run: {reason}")
    if len(args.faults) == 1:
        await run(args.faults[0], args)
        return
    # one world per process (tortoise keeps one database per process): a child per fault
    for kind in args.faults:
        argv = [a for a in sys.argv[1:] if a not in ("--faults", "cut", "pause")]
        child = await asyncio.create_subprocess_exec(
            sys.executable, __file__, *argv, "--faults", kind
        )
        if await child.wait() != 0:
            sys.exit(f"{kind}: failed")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ttl", type=float, default=3.0, help="VITRINE_LEASE_TTL_S")
    parser.add_argument("--bots", type=int, default=4)
    parser.add_argument("--orders-per-bot", type=int, default=5)
    parser.add_argument("--rate", type=float, default=1.5, help="approvals per second")
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "VITRINE_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"
        ),
        help="admin URL: a database is created there and dropped afterwards",
    )
    parser.add_argument("--faults", nargs="+", default=["cut", "pause"], choices=["cut", "pause"])
    asyncio.run(main(parser.parse_args()))
