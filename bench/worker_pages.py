"""Where a worker's unique memory goes, page by page.

    .venv/bin/python bench/worker_pages.py [--wait 10] [--objects]

Preloads like the zygote (this process becomes one), forks an idle sibling that only sleeps
and a real worker for one bot against the sandbox, waits, then compares every writable
anonymous page of the worker with the sibling's (`/proc/<pid>/pagemap`): a page whose frame
differs was copied (or first written) by the worker. Prints USS, copied pages by mapping and,
with `--objects`, why each copied page was written (reference counts, code objects, other
object bodies, or memory outside any object: allocations into the zygote's free holes) by
reading both copies through `/proc/<pid>/mem` and mapping the changed words to the Python
objects the zygote had at those addresses. Loopback only; about 20 s (60 s with --objects);
needs /proc access to its own children (root or ptrace-permitted).
"""

# A bench script: blocking process management inside coroutines is deliberate here.
# ruff: noqa: ASYNC109, ASYNC220, ASYNC230

from __future__ import annotations

import argparse
import asyncio
import bisect
import collections
import gc
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

PAGE = os.sysconf("SC_PAGE_SIZE")


def writable_anon(pid: int) -> list[tuple[int, int, str]]:
    out = []
    with open(f"/proc/{pid}/maps") as fh:
        for line in fh:
            parts = line.split()
            start, end = (int(x, 16) for x in parts[0].split("-"))
            name = parts[5] if len(parts) > 5 else "[anon]"
            if name.startswith("/memfd:vitrine-zygote"):
                name = "[memfd]"  # the zygote's anonymous memory, shared (worker.page_share)
            if name in ("[anon]", "[heap]", "[memfd]") and "w" in parts[1]:
                out.append((start, end, name))
    return out


def frames(pid: int) -> dict[int, tuple[int, str]]:
    """{page address: (physical frame, mapping name)} of the present pages."""
    found: dict[int, tuple[int, str]] = {}
    with open(f"/proc/{pid}/pagemap", "rb") as fh:
        for start, end, name in writable_anon(pid):
            fh.seek(start // PAGE * 8)
            data = fh.read((end - start) // PAGE * 8)
            for i in range(len(data) // 8):
                entry = struct.unpack_from("<Q", data, i * 8)[0]
                if entry >> 63:  # present
                    found[start + i * PAGE] = (entry & ((1 << 55) - 1), name)
    return found


def own_anon_kb(pid: int) -> tuple[int, int]:
    """(kB of anonymous pages only `pid` maps, of them in the zygote's memfd mappings): what the
    worker really costs. USS also counts memfd (file) pages that no other process happens to
    map yet, which are the zygote's memory, not the worker's."""
    total = in_memfd = 0
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/pagemap", "rb") as fh:
        for line in maps:
            parts = line.split()
            start, end = (int(x, 16) for x in parts[0].split("-"))
            if "w" not in parts[1]:
                continue
            memfd = len(parts) > 5 and parts[5].startswith("/memfd:vitrine-zygote")
            fh.seek(start // PAGE * 8)
            data = fh.read((end - start) // PAGE * 8)
            for i in range(len(data) // 8):
                entry = struct.unpack_from("<Q", data, i * 8)[0]
                # present, exclusively mapped (bit 56), anonymous (bit 61 clear)
                if entry >> 63 and entry >> 56 & 1 and not entry >> 61 & 1:
                    total += PAGE // 1024
                    in_memfd += PAGE // 1024 if memfd else 0
    return total, in_memfd


def object_spans() -> tuple[list[int], list[tuple[int, int, object]]]:
    """Every object reachable from the GC roots and modules: (starts, [(start, end, obj)])."""
    seen: set[int] = set()
    objs: list[object] = []
    stack = list(gc.get_objects()) + list(sys.modules.values())
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        objs.append(obj)
        stack.extend(gc.get_referents(obj))
        if type(obj).__name__ == "code":
            stack.extend(obj.co_consts)  # type: ignore[attr-defined]
    spans = sorted((id(o), id(o) + max(16, sys.getsizeof(o)), o) for o in objs)
    return [s[0] for s in spans], spans


def classify(
    worker: int,
    sibling: int,
    copied: list[int],
    spans: tuple[list[int], list[tuple[int, int, object]]],
) -> collections.Counter:
    starts, table = spans
    why: collections.Counter[str] = collections.Counter()
    with open(f"/proc/{worker}/mem", "rb") as mine, open(f"/proc/{sibling}/mem", "rb") as ref:
        for page in copied:
            mine.seek(page)
            ref.seek(page)
            a, b = mine.read(PAGE), ref.read(PAGE)
            reasons = set()
            for off in range(0, PAGE, 8):
                if a[off : off + 8] == b[off : off + 8]:
                    continue
                addr = page + off
                j = bisect.bisect_right(starts, addr) - 1
                if j >= 0 and table[j][0] <= addr < table[j][1]:
                    obj = table[j][2]
                    kind = type(obj).__name__
                    reasons.add(
                        "refcount"
                        if addr == table[j][0]
                        else "code object"
                        if kind == "code"
                        else f"body of {kind}"
                        if kind in ("type", "function", "dict")
                        else "other object body"
                    )
                else:
                    reasons.add("outside objects (allocations in free holes)")
            if not reasons:
                why["written back unchanged (incref/decref)"] += 1
            else:
                for label in (
                    "code object",
                    "outside objects (allocations in free holes)",
                    "refcount",
                    "body of type",
                    "body of function",
                    "body of dict",
                    "other object body",
                ):
                    if label in reasons:
                        why[label] += 1
                        break
    return why


async def world(bench: object, dc: object) -> int:
    ids = await bench.make_world(dc, 1)  # type: ignore[attr-defined]
    return ids[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--wait", type=float, default=10.0, help="seconds after the fork")
    parser.add_argument("--objects", action="store_true", help="attribute the copied pages")
    parser.add_argument(
        "--no-pack", action="store_true", help="do not pack the hot code objects (A/B)"
    )
    parser.add_argument(
        "--no-share", action="store_true", help="no page sharing (VITRINE_PAGE_SHARE=off; A/B)"
    )
    parser.add_argument(
        "--profile-code",
        action="store_true",
        help="record the code objects the worker runs into worker/hot_code.txt",
    )
    args = parser.parse_args()

    import fleet_orchestrator as fo
    import redis as redis_sync

    from bench._world import redis_argv
    from fleet import keys
    from ops.process_tools import free_port
    from sandbox.discord.client import DiscordSandbox
    from sandbox.server import SandboxProcess

    bench = fo.Bench(argparse.Namespace(spawn_rate=50.0, store_guilds=False))
    port = free_port()
    redis_proc = subprocess.Popen(redis_argv(port), stdout=subprocess.DEVNULL)
    children: list[int] = []
    try:
        with SandboxProcess("--no-mp") as sb:
            env = bench.env(sb.urls["DISCORD_API_BASE"], f"redis://127.0.0.1:{port}/0")
            os.environ.update(env)

            async def setup() -> int:
                async with DiscordSandbox(sb.urls["SANDBOX_CONTROL_URL"], timeout=30) as dc:
                    return await world(bench, dc)

            iid = asyncio.run(setup())
            from worker import hot_code, zygote

            zygote.PACK_HOT_CODE = not args.no_pack
            # with --objects the object table is built first, and shared with the rest
            zygote.PAGE_SHARE = not args.no_share and not args.objects
            started = time.monotonic()
            zygote.preload()
            print(f"zygote preload: {time.monotonic() - started:.1f} s", flush=True)
            spans = object_spans() if args.objects else None
            if args.objects and not args.no_share:
                from worker import page_share

                gc.freeze()
                print(f"zygote: {page_share.share()}", flush=True)
            sibling = os.fork()
            if sibling == 0:
                while True:
                    signal.pause()
            children.append(sibling)
            worker = os.fork()
            if worker == 0:
                if args.profile_code:
                    seen = hot_code.profile_calls()

                    def dump(*_: object) -> None:
                        sys.setprofile(None)
                        hot_code.write_keys(list(seen.values()))

                    # SIGUSR1 dumps tracebacks and SIGUSR2 hands the bot over (worker.main,
                    # worker.lifecycle): a real-time signal nobody else uses
                    signal.signal(signal.SIGRTMIN + 3, dump)
                zygote._child(iid, [])
            children.append(worker)
            client = redis_sync.Redis.from_url(env["REDIS_URL"])
            client.hset(keys.runtime(iid), mapping={"pid": worker, "state": "starting"})
            client.close()
            time.sleep(args.wait)
            if args.profile_code:
                os.kill(worker, signal.SIGRTMIN + 3)
                time.sleep(2)
                print(f"hot code objects written to {hot_code.HOT_CODE_FILE}")
            uss_kb, rss_kb = fo.uss_kb(worker)
            anon_kb, memfd_kb = own_anon_kb(worker)
            print(
                f"worker's own anonymous pages: {anon_kb / 1024:.1f} MB "
                f"({memfd_kb / 1024:.1f} MB of them copies in the zygote's memfd mappings)"
            )
            ref, own = frames(sibling), frames(worker)
            copied = sorted(p for p, (f, _) in own.items() if p in ref and ref[p][0] != f)
            fresh = [p for p in own if p not in ref]
            by_map = collections.Counter(own[p][1] for p in copied)
            print(
                f"worker USS after {args.wait:.0f} s: {uss_kb / 1024:.1f} MB "
                f"(RSS {rss_kb / 1024:.1f} MB)"
            )
            print(
                f"zygote pages the worker copied: {len(copied)} "
                f"({len(copied) * PAGE / 2**20:.1f} MB): "
                + ", ".join(f"{n} {c}" for n, c in by_map.most_common())
            )
            print(
                f"pages only the worker has (new mappings): {len(fresh)} "
                f"({len(fresh) * PAGE / 2**20:.1f} MB)"
            )
            if spans is not None:
                why = classify(worker, sibling, copied, spans)
                print("copied pages by reason (first that applies):")
                for label, count in why.most_common():
                    print(f"  {count:6d} pages {count * PAGE / 2**20:5.1f} MB  {label}")
    finally:
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        redis_proc.kill()
        redis_proc.wait(10)
        bench.cleanup()


if __name__ == "__main__":
    main()
