"""KSM bench: what kernel same-page merging does to an idle fleet's memory, over time.

    .venv/bin/python bench/ksm_fleet.py [--bots 100] [--watch 300] [--every 15]
        [--pages-to-scan 1000] [--sleep-ms 20] [--advisor] [--ksm off] [--paced]

Starts N bots like `bench/fleet_orchestrator.py` (sandbox, private Redis, SQLite, a real
orchestrator; `VITRINE_KSM` as given), turns the host's `ksmd` on with the given scan rate
(root; the previous values are put back at the end), then every `--every` seconds prints the
workers' USS, PSS and RSS p50, the pages KSM merged, MemAvailable used per bot since before
the orchestrator started, and `ksmd`'s CPU (% of one core over the interval). At the end it
measures what a write to a merged page costs (the copy-on-write "unmerge") against a write to
a page of its own. With `--paced`, a start that reaches the MemAvailable floor
(`--mem-floor-gib`) waits for ksmd to merge the bots already up instead of stopping: how a box
holds more bots than it could unmerged. Loopback only; bounded by `--watch` and `--timeout`;
stops every process it started.

USS counts a merged page nowhere (it is shared), PSS counts a share of it: with KSM on, the
real cost of a bot is PSS, or MemAvailable per bot all in, not USS.
"""

# A bench script: blocking process management inside coroutines is deliberate here.
# ruff: noqa: ASYNC109, ASYNC220, ASYNC230, ASYNC251

from __future__ import annotations

import argparse
import asyncio
import contextlib
import mmap
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import redis.asyncio as aioredis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench._memory import (  # noqa: E402
    CLK,
    GiB,
    MiB,
    children_of,
    cpu_ticks,
    mem_available,
    smaps,
)
from bench.fleet_orchestrator import Bench  # noqa: E402
from fleet.ksm import KSM_SYSFS  # noqa: E402

PAGE = mmap.PAGESIZE
STAT_FILES = ("pages_shared", "pages_sharing", "full_scans", "pages_scanned", "pages_to_scan")


def ksm_stat() -> dict[str, int]:
    return {name: int((KSM_SYSFS / name).read_text()) for name in STAT_FILES}


def ksmd_pid() -> int | None:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError), open(f"/proc/{entry}/comm") as fh:
                if fh.read().strip() == "ksmd":
                    return int(entry)
    return None


class HostKsm:
    """Sets the host's ksmd knobs for the run and puts the old values back."""

    def __init__(self, knobs: dict[str, str]) -> None:
        self.knobs = knobs
        self.saved: dict[str, str] = {}

    def __enter__(self) -> HostKsm:
        try:
            for name, value in self.knobs.items():
                path = KSM_SYSFS / name
                text = path.read_text().strip()  # advisor_mode reads "[none] scan-time"
                self.saved[name] = text.split("[")[1].split("]")[0] if "[" in text else text
                path.write_text(value)
        except OSError:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for name in reversed(list(self.saved)):
            with contextlib.suppress(OSError):
                (KSM_SYSFS / name).write_text(self.saved[name])


def merging_pages(pid: int) -> int:
    """Pages of `pid` currently merged by KSM (/proc/<pid>/ksm_merging_pages)."""
    try:
        with open(f"/proc/{pid}/ksm_merging_pages") as fh:
            return int(fh.read())
    except OSError:
        return 0


class KsmBench(Bench):
    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__(args)
        self.before_avail = mem_available()  # all in: before the sandbox, Redis, the fleet

    async def rollout(self, redis: aioredis.Redis, ids: list[int]) -> list[int]:
        """`--paced`: switch bots on like the base bench, but when the projected MemAvailable
        would cross the floor, wait for ksmd to merge the bots already up (MemAvailable comes
        back) instead of stopping there; give up after `--timeout` s without room."""
        if not self.args.paced:
            return await super().rollout(redis, ids)
        floor, batch = self.args.mem_floor_gib * GiB, max(1, int(self.args.spawn_rate))
        enabled: list[int] = []
        t0 = time.monotonic()
        for start in range(0, len(ids), batch):
            since = time.monotonic()
            while True:
                online = await self.online_count(redis, enabled) if enabled else 0
                if self.headroom(online, len(enabled) + batch) >= floor:
                    break
                if time.monotonic() - since > self.args.timeout:
                    print(f"no room for more than {len(enabled)} bots", flush=True)
                    return sorted(await self.online(redis, enabled))
                await asyncio.sleep(2)
            if time.monotonic() - since > 2:
                print(
                    f"  t={time.monotonic() - t0:.0f} s: waited {time.monotonic() - since:.0f} s "
                    f"for ksmd to make room; {online} online, MemAvailable "
                    f"{mem_available() / GiB:.1f} GiB",
                    flush=True,
                )
            chunk = ids[start : start + batch]
            await self.set_running(redis, chunk, True)
            enabled += chunk
            await asyncio.sleep(1.0)
        await self.wait_online(redis, enabled, self.args.timeout)
        return enabled

    async def measure(
        self,
        env: dict[str, str],
        redis: aioredis.Redis,
        orch: subprocess.Popen[bytes],
        recs: dict[int, dict[str, str]],
        plain_id: int,
    ) -> None:
        args = self.args
        pids = [int(r["pid"]) for r in recs.values()]
        others = [orch.pid, *(p for p in children_of(orch.pid) if p not in pids)]  # + zygote
        ksmd = ksmd_pid()
        started = time.monotonic()
        last_t, last_cpu, last_scanned = started, cpu_ticks(ksmd) if ksmd else 0, 0
        print(
            "   t s | USS p50 | PSS p50 | RSS p50 | merged/worker p50 | pages_shared "
            "| full scans | pages scanned/s | fleet PSS/bot | MemAvailable used/bot | ksmd CPU",
            flush=True,
        )
        while True:
            now = time.monotonic()
            sizes = [smaps(p) for p in pids]
            uss = statistics.median(s[0] for s in sizes) / MiB
            pss = statistics.median(s[1] for s in sizes) / MiB
            rss = statistics.median(s[2] for s in sizes) / MiB
            merged = statistics.median(merging_pages(p) for p in pids) * PAGE / MiB
            stat = ksm_stat()
            used = (self.before_avail - mem_available()) / len(pids) / MiB
            # every fleet process's PSS (workers, zygote, orchestrator) over the bots: what
            # they really cost, merged pages counted once; MemAvailable also moves with
            # whatever else runs on the box
            fleet_pss = (sum(s[1] for s in sizes) + sum(smaps(p)[1] for p in others)) / len(pids)
            cpu = cpu_ticks(ksmd) if ksmd else 0
            elapsed = max(1.0, now - last_t)
            share = (cpu - last_cpu) / CLK / elapsed * 100
            rate = (stat["pages_scanned"] - last_scanned) / elapsed if last_scanned else 0.0
            last_t, last_cpu, last_scanned = now, cpu, stat["pages_scanned"]
            print(
                f"{now - started:6.0f} | {uss:5.1f} MB | {pss:5.1f} MB | {rss:5.1f} MB | "
                f"{merged:5.1f} MB | {stat['pages_shared']:7d} | {stat['full_scans']:5d} | "
                f"{rate:9,.0f} (pages_to_scan {stat['pages_to_scan']}) | "
                f"{fleet_pss / MiB:5.1f} MiB | {used:6.1f} MiB | {share:5.1f} %",
                flush=True,
            )
            if now - started >= args.watch:
                break
            await asyncio.sleep(args.every)
        with contextlib.suppress(Exception):
            print(unmerge_cost(), flush=True)


def unmerge_cost(pages: int = 4096) -> str:
    """Time one write per page to pages KSM merged (a copy-on-write fault each) against
    writes to pages of this process's own that are already present."""
    area = mmap.mmap(-1, pages * PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    try:
        for n in range(pages):
            area[n * PAGE : n * PAGE + 8] = b"vitrine!"  # identical pages: all merge
        area.madvise(mmap.MADV_MERGEABLE)
        deadline = time.monotonic() + 120
        while merging_pages(os.getpid()) < pages * 0.9 and time.monotonic() < deadline:
            time.sleep(0.5)
        merged = merging_pages(os.getpid())
        if merged < pages * 0.9:
            return (
                f"write to a merged page: not measured (ksmd merged {merged} of {pages} in 120 s)"
            )
        t0 = time.perf_counter()
        for n in range(pages):
            area[n * PAGE] = 1
        on_merged = (time.perf_counter() - t0) / pages * 1e6
        t0 = time.perf_counter()
        for n in range(pages):
            area[n * PAGE] = 2
        on_own = (time.perf_counter() - t0) / pages * 1e6
    finally:
        area.close()
    return (
        f"write to a merged page (COW unmerge): {on_merged:.2f} us per page "
        f"({merged} of {pages} pages were merged); to a page of its own: {on_own:.2f} us"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bots", type=int, default=100)
    parser.add_argument("--watch", type=float, default=300.0, help="seconds to watch")
    parser.add_argument("--every", type=float, default=15.0)
    parser.add_argument("--ksm", choices=("on", "off"), default="on", help="VITRINE_KSM")
    parser.add_argument("--pages-to-scan", type=int, default=1000)
    parser.add_argument("--sleep-ms", type=int, default=20)
    parser.add_argument("--advisor", action="store_true", help="advisor_mode=scan-time")
    parser.add_argument("--spawn-rate", type=float, default=50.0)
    parser.add_argument("--timeout", type=float, default=150.0)
    parser.add_argument("--mem-floor-gib", type=float, default=4.0)
    parser.add_argument("--mem-per-bot-mib", type=float, default=14.0)
    parser.add_argument("--store-guilds", action="store_true")
    parser.add_argument(
        "--paced",
        action="store_true",
        help="at the memory floor, wait for ksmd to merge instead of stopping the start",
    )
    args = parser.parse_args()
    args.crashes, args.idle = 0, 0.0
    os.environ["VITRINE_KSM"] = args.ksm
    knobs = {  # in this order: with the advisor on, writing pages_to_scan is EINVAL
        "pages_to_scan": str(args.pages_to_scan),
        "sleep_millisecs": str(args.sleep_ms),
        "advisor_mode": "scan-time" if args.advisor else "none",
        "run": "1",
    }
    bench = KsmBench(args)
    try:
        with HostKsm(knobs):
            asyncio.run(bench.run())
    finally:
        bench.cleanup()


if __name__ == "__main__":
    main()
