"""Crash → serving again by RESUME (issue 14): how long, and how many logins per crash.

Everything real on loopback (the sandbox in this process, a private redis-server, SQLite or a
new PostgreSQL database, the orchestrator with one worker per bot). Each bot's store has its
guild set (the replacement loads it before RESUME). Once every bot is online and has stored
its session, each round SIGKILLs every worker one after the other; for each kill it measures
the time until the sandbox answers the replacement's RESUME with RESUMED (the bot serves
again and the missed events were replayed), and counts the sandbox's IDENTIFYs (target 0).

    .venv/bin/python bench/resume_crash.py [--bots 20] [--rounds 2] [--postgres ADMIN_URL]
        [--stale | --no-resume]   # for comparison: each crash logs in

With `--stale` the sandbox forgets a dropped session at once (`session_resume_window_s=0`):
the replacement's RESUME gets INVALID_SESSION and it IDENTIFYs (disnake first waits 5 s, as
Discord asks after op 9); the time is then crash → READY. With `--no-resume`
(`VITRINE_WORKER_RESUME=0`) the replacement IDENTIFYs at once, as every crash did before
issue 14.

Past 100 bots it refuses to start below 4 GiB MemAvailable, and stops killing below 2 GiB.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._world import pct, world  # noqa: E402

ENV = {
    # restart a killed worker at once, however often it is killed (no crash-loop back-off)
    "VITRINE_POLICY_HEALTHY_AFTER": "1",
    "VITRINE_POLICY_BASE_DELAY": "0.2",
    "VITRINE_POLICY_CRASHLOOP_COUNT": "10000",
    "VITRINE_POLICY_SUSPEND_AFTER": "10000",
    "LOG_LEVEL": "WARNING",
}
LARGE_FLEET_ENV = {
    "VITRINE_WORKER_HEARTBEAT_S": "5",
    "VITRINE_POLICY_STUCK_AFTER": "60",
    "VITRINE_SPAWN_RATE": "50",
}
GIB = 1024**3


def mem_available() -> int:
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


async def _stores(w, count: int) -> list[tuple[str, int]]:
    """`count` bots, each in its own store's guild: [(application id, instance id)]."""
    from fleet.models import BotInstance
    from shop.models import Account, Tenant

    out = []
    for n in range(count):
        bot = await w.dc.create_bot(f"Loja {n}")
        guild = await w.dc.create_guild(f"Servidor {n}", channels=["loja"], bots=[bot])
        owner = await Account.create(discord_id=uuid.uuid4().hex[:18], username=f"s{n}")
        tenant = await Tenant.create(owner=owner, name=f"Loja {n}", guild_id=guild.id)
        inst = await BotInstance.create(
            tenant=tenant, name=f"Loja {n}", token_enc=w.fleet.vault.encrypt(bot.token)
        )
        out.append((bot.application_id, inst.id))
    return out


async def _until(check, timeout: float, every: float = 0.002) -> float | None:  # noqa: ASYNC109
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        await asyncio.sleep(every)
    return None


async def _all_ready(w, ids: list[int], timeout: float) -> None:  # noqa: ASYNC109
    """Every instance online with its session stored; Redis timeouts during a mass start are
    waited out. Exits (the fleet is torn down) below 2 GiB MemAvailable or at the timeout."""
    from redis.exceptions import RedisError

    from fleet import keys
    from fleet.states import InstanceState

    start = time.monotonic()
    ready = 0
    while ready < len(ids):
        if mem_available() < 2 * GIB:
            sys.exit(f"MemAvailable below 2 GiB while starting the fleet ({ready} ready)")
        if time.monotonic() - start > timeout:
            sys.exit(f"only {ready} of {len(ids)} bots online with a stored session")
        await asyncio.sleep(1.0)
        try:
            records = await w.fleet.store.get_many(ids)
            pipe = w.fleet.redis.pipeline(transaction=False)
            for iid in ids:
                pipe.exists(keys.gateway_session(iid))
            stored = await pipe.execute()
        except RedisError:
            continue
        ready = sum(
            1
            for iid, has in zip(ids, stored, strict=True)
            if has and (r := records.get(iid)) is not None and r.state == InstanceState.ONLINE
        )
    print(f"{len(ids)} bots online with a stored session after {time.monotonic() - start:.0f} s")


async def run(bots: int, rounds: int, postgres: str, stale: bool, no_resume: bool) -> None:
    if bots > 100 and mem_available() < 4 * GIB:
        sys.exit(f"MemAvailable {mem_available() / GIB:.1f} GiB < 4 GiB: not starting")
    env = {**ENV, "VITRINE_WORKER_RESUME": "0" if no_resume else "1"}
    if bots > 100:
        # the harness's test liveness (heartbeat 0.5 s, stuck after 3 s) kills workers that
        # are merely slow during a mass start on 2 cores: production values, paced starts
        env |= LARGE_FLEET_ENV
    stale = stale or no_resume  # both wait for a login
    async with world("vitrine-bench-resume-", postgres=postgres, extra_env=env) as w:
        stats = w.sb.discord_state.bots
        pairs = await _stores(w, bots)
        w.fleet.start()
        await _all_ready(w, [iid for _, iid in pairs], timeout=max(60.0, bots * 0.3))
        await asyncio.sleep(1.5)  # every worker online past HEALTHY_AFTER
        if stale and not no_resume:
            await w.dc.configure(session_resume_window_s=0)
        samples: list[float] = []
        identifies = lost = crashes = 0
        for _ in range(rounds):
            for app_id, iid in pairs:
                if mem_available() < 2 * GIB:
                    print("MemAvailable below 2 GiB: stopping the kills")
                    break
                s = stats[app_id].stats
                rec = await w.fleet.record(iid)
                assert rec is not None and rec.pid is not None
                before_id, before_res = s.identify_count, s.resume_count
                os.kill(rec.pid, signal.SIGKILL)
                crashes += 1
                took = await _until(
                    (lambda s=s, i=before_id: s.identify_count > i)
                    if stale
                    else (lambda s=s, r=before_res: s.resume_count > r),
                    30,
                )
                if took is None:
                    lost += 1
                else:
                    samples.append(took * 1000)
                identifies += s.identify_count - before_id
            await asyncio.sleep(1.2)  # past HEALTHY_AFTER again: the next kill restarts at once
        db = "postgres" if postgres else "sqlite"
        mode = "no-resume" if no_resume else "stale" if stale else "resume"
        print(f"bots={bots} crashes={crashes} db={db} mode={mode}")
        if samples:
            event = "READY" if stale else "RESUMED"
            print(
                f"crash -> {event}: p50 {pct(samples, 50):.0f} ms, "
                f"p90 {pct(samples, 90):.0f} ms, max {max(samples):.0f} ms"
            )
        print(f"IDENTIFYs per crash: {identifies / max(1, crashes):.2f} ({identifies} in total)")
        print(f"crashes not serving again within 30 s: {lost}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--bots", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--postgres", default="", help="admin URL: run on a new PG database")
    parser.add_argument("--stale", action="store_true", help="sessions expire: IDENTIFY path")
    parser.add_argument("--no-resume", action="store_true", help="VITRINE_WORKER_RESUME=0")
    args = parser.parse_args()
    asyncio.run(run(args.bots, args.rounds, args.postgres, args.stale, args.no_resume))


if __name__ == "__main__":
    main()
