"""A rolling update's cost per bot: SIGTERM to one of two orchestrator nodes with
`VITRINE_ORCH_ON_STOP=handover` (as deploy/kubernetes runs them), measured per bot as the
gap between its last moment online on the stopping node and its first moment online on the
other node.

Everything real on loopback: the sandbox (Discord + Mercado Pago) in this process, a private
redis-server, SQLite, two orchestrator processes (nodes A and B) with their zygotes and one
worker per bot. The production periods are used (change pass 2 s, lease TTL 30 s, node
heartbeat 5 s, stop grace 10 s); only the crash policy is the tests' fast one.

    .venv/bin/python bench/k8s_handover.py [--bots 20]

Printed: the bots node A held, the per-bot offline gap (p50, p90, max), SIGTERM → every one
of them connected again, and MemAvailable before and with the fleet up.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._world import pct, world  # noqa: E402

PRODUCTION_PERIODS = {
    "VITRINE_ORCH_ON_STOP": "handover",
    "VITRINE_ORCH_PASS_S": "2",
    "VITRINE_LEASE_TTL_S": "30",
    "VITRINE_ORCH_HEARTBEAT_S": "5",
    "VITRINE_POLICY_STOP_GRACE": "10",
}


def mem_available_mb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def run(bots: int) -> None:
    from fleet import keys
    from fleet.control_protocol import mark_dirty
    from fleet.states import InstanceState

    online = InstanceState.ONLINE
    before = mem_available_mb()
    async with world("vitrine-handover-", extra_env=PRODUCTION_PERIODS) as w:
        a, b = w.fleet, w.fleet.peer()
        try:
            a.start()
            b.start()

            async def both_live() -> bool:
                beats = [
                    await w.fleet.redis.get(keys.orchestrator_heartbeat(n))
                    for n in (a.node, b.node)
                ]
                return all(beats)

            await a.wait_for("both nodes live", both_live, timeout=30)
            made = [await w.dc.create_bot(f"Loja {n}") for n in range(bots)]
            ids = [await a.add_instance(x.token, name=f"Loja {n}") for n, x in enumerate(made)]
            await mark_dirty(a.redis, *ids)
            recs = [await a.wait_state(i, online, timeout=120) for i in ids]
            on_a = [i for i, r in zip(ids, recs, strict=True) if r.node == a.node]
            up = mem_available_mb()
            state = w.sb.discord_state
            apps = {
                iid: state.bots[str(x.application_id)] for iid, x in zip(ids, made, strict=True)
            }
            hub = state.hub
            assert hub is not None

            def logins(iid: int) -> int:
                return apps[iid].stats.identify_count + apps[iid].stats.resume_count

            before_logins = {iid: logins(iid) for iid in on_a}
            resumes_before = sum(apps[i].stats.resume_count for i in on_a)
            last_up: dict[int, float] = {}  # last moment the old session was open
            back_at: dict[int, float] = {}  # first moment a new session was open
            began = time.monotonic()
            assert a.proc is not None
            a.proc.send_signal(signal.SIGTERM)
            while len(back_at) < len(on_a) and time.monotonic() - began < 120:
                now = time.monotonic()
                for iid in on_a:
                    if iid in back_at:
                        continue
                    is_open = hub.open_count(apps[iid].application_id) > 0
                    if is_open and logins(iid) > before_logins[iid]:
                        back_at[iid] = now
                    elif is_open:
                        last_up[iid] = now
                await asyncio.sleep(0.01)  # the sandbox's gateway runs in this event loop
            total = time.monotonic() - began
            gaps = [back_at[i] - last_up.get(i, began) for i in back_at]
            print(f"bots: {bots} on 2 nodes; node A held {len(on_a)}")
            if gaps:
                print(
                    f"offline per bot s: n={len(gaps)}/{len(on_a)} p50={pct(gaps, 50):.2f} "
                    f"p90={pct(gaps, 90):.2f} max={max(gaps):.2f}"
                )
            print(f"SIGTERM -> all of A's bots connected again: {total:.2f} s")
            resumed = sum(apps[i].stats.resume_count for i in on_a) - resumes_before
            print(f"new sessions: {len(back_at) - resumed} IDENTIFY, {resumed} RESUME")
            print(f"MemAvailable: {before:.0f} MB before, {up:.0f} MB with the fleet up")
            await a.stop(signal.SIGTERM) if a.proc.poll() is None else None
        finally:
            await b.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bots", type=int, default=20)
    args = parser.parse_args()
    if mem_available_mb() < 400 + 20 * args.bots:
        sys.exit(
            f"not enough memory for {args.bots} bots (MemAvailable {mem_available_mb():.0f} MB)"
        )
    asyncio.run(run(args.bots))


if __name__ == "__main__":
    main()
