"""Where a fleet's memory goes: /proc/meminfo and per-process USS, for the fleet benches.

`MemAvailable` is the kernel's estimate of what can still be allocated without swapping
(proc(5)); the fleet bench stops starting bots below a floor instead of letting the OOM
killer choose a victim on a shared machine.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from dataclasses import dataclass

GiB = 1 << 30
MiB = 1 << 20

# /proc/meminfo fields that grow with the number of processes and connections
KERNEL_FIELDS = ("PageTables", "KernelStack", "Slab", "SUnreclaim", "Shmem", "AnonPages")


def meminfo() -> dict[str, int]:
    """/proc/meminfo in bytes."""
    out: dict[str, int] = {}
    with open("/proc/meminfo") as fh:
        for line in fh:
            name, _, rest = line.partition(":")
            parts = rest.split()
            if parts and parts[0].isdigit():
                out[name] = int(parts[0]) * (1024 if len(parts) > 1 else 1)
    return out


def mem_available() -> int:
    """MemAvailable in bytes."""
    return meminfo()["MemAvailable"]


def smaps(pid: int) -> tuple[int, int, int]:
    """(USS, PSS, RSS) of `pid` in bytes from /proc/<pid>/smaps_rollup; zeros if it is gone."""
    fields: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) >= 2 and parts[1].isdigit():
                    fields[parts[0].rstrip(":")] = int(parts[1]) * 1024
    except OSError:
        return 0, 0, 0
    uss = fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)
    return uss, fields.get("Pss", 0), fields.get("Rss", 0)


def children_of(pid: int) -> list[int]:
    """Direct children of `pid` (from /proc/<pid>/task/*/children)."""
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                found.extend(int(p) for p in fh.read().split())
    except OSError:
        pass
    return found


# kernel threads whose CPU grows with a fleet's memory: the host's DAMON monitor (its
# physical-address checks walk every mapping of a sampled page: a page 2,000 workers share
# costs 2,000 lookups), KSM's scanner, and reclaim
KTHREADS = ("kdamond", "ksmd", "kswapd")


def kernel_thread_cpu() -> dict[str, float]:
    """CPU seconds so far of the KTHREADS kernel threads, by name."""
    found: dict[str, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm") as fh:
                name = fh.read().strip()
            if name.startswith(KTHREADS):
                found[name] = found.get(name, 0.0) + cpu_ticks(int(entry)) / CLK
        except OSError:
            continue
    return found


@dataclass
class Snapshot:
    info: dict[str, int]
    kthreads: dict[str, float]

    @classmethod
    def take(cls) -> Snapshot:
        return cls(meminfo(), kernel_thread_cpu())


def where_it_went(
    before: Snapshot,
    after: Snapshot,
    groups: dict[str, Iterable[int]],
) -> list[str]:
    """Lines explaining the drop of MemAvailable between two snapshots: the summed USS (and
    PSS) of each group of processes, and the kernel's own growth (page tables, stacks, slab:
    sockets and their buffers)."""
    used = before.info["MemAvailable"] - after.info["MemAvailable"]
    left = after.info["MemAvailable"] / GiB
    lines = [f"MemAvailable fell by {used / MiB:,.0f} MiB ({left:.1f} GiB left)"]
    for name, pids in groups.items():
        pids = list(pids)
        sizes = [smaps(p) for p in pids]
        uss = sum(s[0] for s in sizes)
        pss = sum(s[1] for s in sizes)
        lines.append(
            f"  {name}: {len(pids)} process(es), USS {uss / MiB:,.0f} MiB, PSS {pss / MiB:,.0f} MiB"
        )
    for field in KERNEL_FIELDS:
        grew = after.info.get(field, 0) - before.info.get(field, 0)
        lines.append(f"  kernel {field}: {grew / MiB:+,.0f} MiB")
    return lines


CLK = os.sysconf("SC_CLK_TCK")


def uss_kb(pid: int) -> tuple[int, int]:
    """(USS, RSS) of `pid` in kB; zeros if it is gone."""
    uss, _pss, rss = smaps(pid)
    return uss // 1024, rss // 1024


def cpu_ticks(pid: int) -> int:
    """User + system CPU time of `pid` in clock ticks (/proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as fh:
        rest = fh.read().rsplit(")", 1)[1].split()
    return int(rest[11]) + int(rest[12])


def cpu_seconds(pids: Iterable[int]) -> float:
    """CPU seconds used so far by the processes still there."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += cpu_ticks(pid)
    return total / CLK


def fleet_memory_report(
    before: Snapshot, orch_pid: int, workers: list[int], sandbox_pid: int, redis_pids: list[int]
) -> None:
    """Print where a fleet's memory and CPU went since `before`, per process group."""
    zygotes = [p for p in children_of(orch_pid) if p not in workers]
    groups = {
        f"workers ({len(workers)})": workers,
        "orchestrator": [orch_pid],
        "zygote": zygotes,
        "sandbox": [sandbox_pid],
        "redis": redis_pids,
    }
    now = Snapshot.take()
    for line in where_it_went(before, now, groups):
        print(line, flush=True)
    busy = {n: now.kthreads[n] - before.kthreads.get(n, 0.0) for n in now.kthreads}
    busy = {n: cpu for n, cpu in busy.items() if cpu >= 0.5}
    if busy:
        print(
            "CPU seconds of kernel threads meanwhile (not ours; the host's): "
            + ", ".join(f"{n} {cpu:.1f}" for n, cpu in sorted(busy.items())),
            flush=True,
        )
    each = cpu_seconds(workers) / max(1, len(workers)) * 1000
    print(
        f"CPU seconds so far: workers {cpu_seconds(workers):.0f} ({each:.0f} ms each), sandbox "
        f"{cpu_seconds([sandbox_pid]):.0f}, orchestrator {cpu_seconds([orch_pid]):.1f}, zygote "
        f"{cpu_seconds(zygotes):.1f}, redis {cpu_seconds(redis_pids):.1f}",
        flush=True,
    )
