"""Fleet bench: N bots online against the sandbox, worker USS vs a plain disnake process,
crash -> replacement started, spawn -> READY, orchestrator CPU while idle.

    .venv/bin/python bench/fleet_orchestrator.py [--bots 500] [--crashes 30] [--idle 30]
        [--mem-floor-gib 2]

The bots are created stopped and switched on in batches of `--spawn-rate` per second while
`MemAvailable` stays above `--mem-floor-gib`; below it no further bot is switched on (and the
ones not online yet are switched off again), and the bench reports the largest count held and
where the memory went. Loopback only; bounded (< 5 min for 500 bots plus `--idle`); every
process it starts is stopped at the end.
"""

# A bench script: starting processes with blocking calls inside coroutines is deliberate here.
# ruff: noqa: ASYNC109, ASYNC220, ASYNC230, ASYNC240

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis.asyncio as aioredis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._memory import (  # noqa: E402
    CLK,
    Snapshot,
    cpu_seconds,
    cpu_ticks,
    fleet_memory_report,
    uss_kb,
)
from bench._rollout import Rollout, start_summary  # noqa: E402
from bench._world import create_database, drop_database, pct, redis_argv  # noqa: E402
from core.db import close_db, init_db  # noqa: E402
from core.vault import TokenVault, generate_key  # noqa: E402
from fleet import keys  # noqa: E402
from fleet.control_protocol import mark_dirty  # noqa: E402
from ops.process_tools import free_port, kill_all_with_env  # noqa: E402
from sandbox.discord.client import DiscordSandbox  # noqa: E402
from sandbox.server import SandboxProcess  # noqa: E402
from worker.page_share import AFTER_READY  # noqa: E402


class Bench(Rollout):
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="vitrine-bench-"))
        self.key = generate_key()
        self.procs: list[subprocess.Popen[bytes]] = []
        self.node = f"bench-{os.getpid()}"
        self.seen_online: set[int] = set()  # bots seen online by `online_count`
        # --postgres: a fresh database on that server (dropped at the end); else SQLite
        self.db_url = f"sqlite://{self.tmp}/db.sqlite3"

    def env(self, api_base: str, redis_url: str) -> dict[str, str]:
        return {
            **os.environ,
            "DATABASE_URL": self.db_url,
            "REDIS_URL": redis_url,
            "DISCORD_API_BASE": api_base,
            "DATA_DIR": str(self.tmp / "data"),
            "LOG_DIR": str(self.tmp / "logs"),
            "TOKEN_ENCRYPTION_KEYS": self.key,
            "ADMIN_API_TOKEN": "t" * 32,
            "PORTAL_SESSION_SECRET": "s" * 32,
            "MERCADOPAGO_WEBHOOK_SECRET": "w" * 32,
            "ORCHESTRATOR_NODE": self.node,
            "LOG_LEVEL": "WARNING",
            "VITRINE_SPAWN_RATE": str(self.args.spawn_rate),
            "VITRINE_SPAWN_BURST": "20",
            "PYTHONPATH": str(ROOT),
        }

    async def make_world(self, dc: DiscordSandbox, count: int, running: bool = True) -> list[int]:
        from fleet.models import BotInstance
        from fleet.states import DesiredState
        from ops.migrations import apply
        from shop.models.accounts import Account, Tenant

        url = self.db_url
        await apply(url)
        await close_db()
        await init_db(url)
        vault = TokenVault([self.key])
        bots = []
        for start in range(0, count, 200):  # the control client's pool: not 2,000 at once
            bots += await asyncio.gather(
                *(dc.create_bot(f"Loja {n}") for n in range(start, min(count, start + 200)))
            )
        ids = []
        for n, bot in enumerate(bots):
            owner = await Account.create(discord_id=str(10**17 + n), username=f"seller{n}")
            # --store-guilds: each store's bot sits in the store's guild, as in production
            # (its commands are then registered in that guild)
            guild = (
                await dc.create_guild(f"Servidor {n}", bots=[bot])
                if self.args.store_guilds
                else None
            )
            tenant = await Tenant.create(
                owner=owner, name=f"Loja {n}", guild_id=guild.id if guild else None
            )
            inst = await BotInstance.create(
                tenant=tenant,
                token_enc=vault.encrypt(bot.token),
                desired_state=DesiredState.RUNNING if running else DesiredState.STOPPED,
                # as onboarding records it (web/portal/onboarding.py; the sandbox's
                # applications are public): a start writes it only when it changed, and a
                # fleet that wrote it in each of 2,000 starts measured a first start
                # after onboarding, not a node's mass start
                bot_public=True,
            )
            ids.append(inst.id)
        if running:
            await close_db()  # the rollout (run) keeps the connection to switch bots on
        return ids

    async def online_count(self, redis: aioredis.Redis, ids: list[int]) -> int:
        """How many of `ids` have been online: one field each, and only of the bots not seen
        online yet. The rollout polls this while the fleet starts; reading every whole
        record instead (2,000 HGETALLs every 0.25 s: 172 ms of the bench's CPU each time,
        parsed in Python) took ~40 % of a core from the start it measures. The final
        figures come from the full records (`online`)."""
        waiting = [i for i in ids if i not in self.seen_online]
        pipe = redis.pipeline(transaction=False)
        for iid in waiting:
            pipe.hget(keys.runtime(iid), "state")
        for iid, state in zip(waiting, await pipe.execute(), strict=True):
            if state == "online":
                self.seen_online.add(iid)
        return sum(i in self.seen_online for i in ids)

    async def online(self, redis: aioredis.Redis, ids: list[int]) -> dict[int, dict[str, str]]:
        pipe = redis.pipeline(transaction=False)
        for iid in ids:
            pipe.hgetall(keys.runtime(iid))
        return {
            i: r
            for i, r in zip(ids, await pipe.execute(), strict=True)
            if r.get("state") == "online"
        }

    async def wait_online(
        self,
        redis: aioredis.Redis,
        ids: list[int],
        timeout: float,
    ) -> dict[int, dict[str, str]]:
        deadline = time.monotonic() + timeout
        while True:
            if await self.online_count(redis, ids) == len(ids) or time.monotonic() > deadline:
                return await self.online(redis, ids)
            await asyncio.sleep(0.25)

    async def plain_process(self, env: dict[str, str], iid: int) -> tuple[int, int]:
        """USS/RSS of `python -m worker --instance ID`: a disnake bot without the zygote."""
        proc = subprocess.Popen(
            [sys.executable, "-m", "worker", "--instance", str(iid)],
            env=env,
            cwd=self.tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.procs.append(proc)
        redis = aioredis.Redis.from_url(env["REDIS_URL"], decode_responses=True)
        await redis.hset(keys.runtime(iid), mapping={"state": "starting", "pid": proc.pid})
        await self.wait_online(redis, [iid], 30)
        await asyncio.sleep(2)
        await redis.aclose()
        usage = uss_kb(proc.pid)
        proc.terminate()
        proc.wait(10)
        return usage

    async def crashes(
        self, redis: aioredis.Redis, recs: dict[int, dict[str, str]]
    ) -> tuple[list[float], list[float]]:
        """Kill healthy workers one by one: kill -> replacement started, and its spawn->READY."""
        to_start, to_ready = [], []
        for iid in random.sample(sorted(recs), min(self.args.crashes, len(recs))):
            pid = int(recs[iid]["pid"])
            killed = time.time()
            os.kill(pid, signal.SIGKILL)
            while True:
                rec = await redis.hgetall(keys.runtime(iid))
                if rec.get("pid") not in (None, str(pid)) and rec.get("state") == "online":
                    break
                await asyncio.sleep(0.01)
            spawned = float(rec["spawned_at"])
            to_start.append((spawned - killed) * 1000)
            if to_start[-1] > 1000:  # say why: the crash policy's answer to this bot's history
                history = await redis.lrange(keys.crashes(iid), 0, -1)
                print(
                    f"  instance {iid}: replacement after {to_start[-1]:.0f} ms; crash "
                    f"history {[json.loads(h).get('code') for h in history]}",
                    flush=True,
                )
            to_ready.append((float(rec["online_since"]) - spawned) * 1000)
            await asyncio.sleep(0.2)
        return to_start, to_ready

    async def set_running(self, redis: aioredis.Redis, ids: list[int], running: bool) -> None:
        """Switch bots on or off in the database and tell the orchestrator (dirty set)."""
        from fleet.models import BotInstance
        from fleet.states import DesiredState

        state = DesiredState.RUNNING if running else DesiredState.STOPPED
        await BotInstance.filter(id__in=ids).update(desired_state=state)
        await mark_dirty(redis, *ids)

    async def mass_start_crashes(self, redis: aioredis.Redis, ids: list[int]) -> None:
        """How many bots crashed before the crash test (their next crash is not a first one:
        the crash policy backs it off)."""
        pipe = redis.pipeline(transaction=False)
        for iid in ids:
            pipe.lrange(keys.crashes(iid), 0, -1)
        histories = await pipe.execute()
        codes: dict[str, int] = {}
        for history in histories:
            for raw in history:
                code = str(json.loads(raw).get("code"))
                codes[code] = codes.get(code, 0) + 1
        crashed = sum(1 for h in histories if h)
        for iid, history in [(i, h) for i, h in zip(ids, histories, strict=True) if h][:3]:
            log = self.tmp / "logs" / "instances" / f"{iid}.log"
            lines = log.read_text(errors="replace").splitlines() if log.exists() else []
            said = [ln[:300] for ln in lines if '"WARNING"' in ln or '"ERROR"' in ln][-3:]
            print(f"  instance {iid}: {[json.loads(h).get('code') for h in history]} {said}")
        print(
            f"bots with a crash recorded during the mass start: {crashed} {codes or ''}", flush=True
        )

    def memory_report(
        self,
        before: Snapshot,
        orch: subprocess.Popen[bytes],
        recs: dict[int, dict[str, str]],
        sandbox_pid: int,
    ) -> None:
        redis_pids = [p.pid for p in self.procs if p is not orch]
        workers = [int(r["pid"]) for r in recs.values()]
        fleet_memory_report(before, orch.pid, workers, sandbox_pid, redis_pids)

    async def run(self) -> None:
        args = self.args
        port = free_port()
        self.procs.append(
            subprocess.Popen(redis_argv(port, "--maxclients", "10000"), stdout=subprocess.DEVNULL)
        )
        redis_url = f"redis://127.0.0.1:{port}/0"
        if args.postgres:
            self.db_url = await create_database(args.postgres, self.tmp)
        with SandboxProcess("--no-mp") as sb:
            env = self.env(sb.urls["DISCORD_API_BASE"], redis_url)
            os.environ.update({k: env[k] for k in ("DATA_DIR", "LOG_DIR")})
            async with DiscordSandbox(sb.urls["SANDBOX_CONTROL_URL"], timeout=30) as dc:
                ids = await self.make_world(dc, args.bots + 1, running=False)
            plain_id, ids = ids[-1], ids[:-1]
            redis = aioredis.Redis.from_url(redis_url, decode_responses=True)
            before = Snapshot.take()
            t0, wall0, cpu0 = time.monotonic(), time.time(), time.process_time()
            out_path = Path(tempfile.gettempdir()) / f"{self.node}.orchestrator.log"
            with open(out_path, "wb") as out:
                orch = subprocess.Popen(
                    [sys.executable, "-m", "orchestrator"],
                    env=env,
                    cwd=self.tmp,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            self.procs.append(orch)
            held = await self.rollout(redis, ids)
            recs = await self.online(redis, held)
            await close_db()
            if not recs:
                raise SystemExit(f"no bot online; orchestrator output in {out_path}")
            print(
                f"bots online: {len(recs)}/{len(ids)} in {time.monotonic() - t0:.1f} s "
                f"(switched on at {args.spawn_rate}/s; MemAvailable floor "
                f"{args.mem_floor_gib} GiB)",
                flush=True,
            )
            start_summary(recs, wall0, args.timeline_step)
            print(
                f"  the bench's own CPU meanwhile (switching bots on, counting them): "
                f"{time.process_time() - cpu0:.1f} s",
                flush=True,
            )
            await self.mass_start_crashes(redis, held)
            await asyncio.sleep(3)
            self.memory_report(before, orch, recs, sb.pid)
            await self.measure(env, redis, orch, recs, plain_id)
            await redis.aclose()

    async def measure(
        self,
        env: dict[str, str],
        redis: aioredis.Redis,
        orch: subprocess.Popen[bytes],
        recs: dict[int, dict[str, str]],
        plain_id: int,
    ) -> None:
        args = self.args
        mass_ready = [
            (float(r["online_since"]) - float(r["spawned_at"])) * 1000 for r in recs.values()
        ]
        recs = {i: r for i, r in recs.items() if os.path.exists(f"/proc/{r['pid']}")}
        usages = [uss_kb(int(r["pid"])) for r in recs.values()]
        plain = await self.plain_process(env, plain_id)
        uss = [u for u, _ in usages]
        print(
            f"USS per worker: p50 {statistics.median(uss) / 1024:.1f} MB, "
            f"max {max(uss) / 1024:.1f} MB (RSS p50 "
            f"{statistics.median([r for _, r in usages]) / 1024:.1f} MB); plain "
            f"`python -m worker` disnake process: USS {plain[0] / 1024:.1f} MB, "
            f"RSS {plain[1] / 1024:.1f} MB",
            flush=True,
        )
        # the idle window starts once every bot has made its start-up give-backs (30 s after
        # READY, worker.page_share): their CPU is the start's, not the idle fleet's
        last_ready = max(float(r["online_since"]) for r in recs.values())
        await asyncio.sleep(max(0.0, last_ready + max(AFTER_READY) + 2 - time.time()))
        orch_uss = uss_kb(orch.pid)[0]
        pids = [int(r["pid"]) for r in recs.values()]
        before, workers_before = cpu_ticks(orch.pid), cpu_seconds(pids)
        await asyncio.sleep(args.idle)
        idle_cpu = (cpu_ticks(orch.pid) - before) / CLK / args.idle * 100
        per_worker = (cpu_seconds(pids) - workers_before) / args.idle / len(pids) * 1000
        print(
            f"idle workers: {per_worker:.2f} ms of CPU per worker per second "
            f"({per_worker * len(pids) / 10:.0f} % of a core for {len(pids)})",
            flush=True,
        )
        print(
            f"orchestrator CPU while {len(recs)} bots idle: {idle_cpu:.2f} % of one core "
            f"over {args.idle:.0f} s; its USS {orch_uss / 1024:.1f} -> "
            f"{uss_kb(orch.pid)[0] / 1024:.1f} MB",
            flush=True,
        )
        later = [uss_kb(int(r["pid"]))[0] for r in recs.values()]
        print(
            f"USS per worker after {args.idle:.0f} s more idle (heartbeats, lease "
            f"renewals): p50 {statistics.median(later) / 1024:.1f} MB "
            f"({(statistics.median(later) / statistics.median(uss) - 1) * 100:+.1f} %), "
            f"max {max(later) / 1024:.1f} MB; fleet total USS {sum(uss) / 1024:,.0f} -> "
            f"{sum(later) / 1024:,.0f} MB ({(sum(later) / sum(uss) - 1) * 100:+.1f} %)",
            flush=True,
        )
        to_start, to_ready = await self.crashes(redis, recs)
        print(
            f"crash -> replacement started: p50 {statistics.median(to_start):.0f} ms, "
            f"p90 {pct(to_start, 90):.0f} ms, max {max(to_start):.0f} ms "
            f"(n={len(to_start)})",
            flush=True,
        )
        print(
            f"spawn -> READY (idle fleet): p50 {statistics.median(to_ready):.0f} ms, "
            f"p90 {pct(to_ready, 90):.0f} ms; during the mass start: p50 "
            f"{statistics.median(mass_ready):.0f} ms",
            flush=True,
        )

    def cleanup(self) -> None:
        kill_all_with_env("ORCHESTRATOR_NODE", self.node)
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        if self.args.postgres and not self.db_url.startswith("sqlite"):
            with contextlib.suppress(Exception):
                asyncio.run(drop_database(self.args.postgres, self.db_url))
        shutil.rmtree(self.tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bots", type=int, default=500)
    parser.add_argument("--crashes", type=int, default=30)
    parser.add_argument("--idle", type=float, default=30.0)
    parser.add_argument("--spawn-rate", type=float, default=50.0)
    parser.add_argument("--timeout", type=float, default=150.0)
    parser.add_argument(
        "--mem-floor-gib",
        type=float,
        default=2.0,
        help="switch no more bots on while MemAvailable is below this (GiB)",
    )
    parser.add_argument(
        "--mem-per-bot-mib",
        type=float,
        default=14.0,
        help="memory a starting bot will still take (MiB; 13.1 measured at 1,000 bots)",
    )
    parser.add_argument(
        "--timeline-step",
        type=float,
        default=5.0,
        help="seconds per bucket of the spawned/online timeline it prints",
    )
    parser.add_argument(
        "--store-guilds",
        action="store_true",
        help="give each store a guild with its bot in it (tenant.guild_id set)",
    )
    parser.add_argument(
        "--postgres",
        default="",
        metavar="ADMIN_URL",
        help="run on a fresh PostgreSQL database created through this URL (e.g. "
        "postgres://postgres@127.0.0.1:5432/postgres) and dropped at the end",
    )
    args = parser.parse_args()
    bench = Bench(args)
    try:
        asyncio.run(bench.run())
    finally:
        bench.cleanup()


if __name__ == "__main__":
    main()
