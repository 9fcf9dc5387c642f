"""Bench: hold N concurrent gateway sessions against a sandbox running as its own process.

    .venv/bin/python bench/sandbox_gateway.py [--connections 1000] [--workers 2] [--hold 30]
                                              [--heartbeat-ms 5000] [--no-zlib]

Each connection IDENTIFYs with its own bot token (one bot + one guild per tenant), then
heartbeats. Prints connections held, the sandbox's RSS/USS (/proc/PID/smaps_rollup) and the
heartbeat->ACK latency p50/p99 seen by the clients. Loopback only; bounded to < 2 minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import sys
import time
import zlib
from pathlib import Path

import aiohttp
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sandbox.server import SandboxProcess  # noqa: E402


def memory_kb(pid: int) -> dict[str, int]:
    """Rss, Pss and USS (private clean + dirty) of a process, in kB."""
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, value = line.split(":", 1)
        fields[key] = int(value.split()[0])
    return {
        "rss": fields["Rss"],
        "pss": fields["Pss"],
        "uss": fields["Private_Clean"] + fields["Private_Dirty"],
    }


# ---- worker side (a separate process holding some of the connections) -------------------
class Holder:
    def __init__(self, url: str, token: str, compressed: bool) -> None:
        self.url, self.token, self.compressed = url, token, compressed
        self.latencies: list[float] = []
        self.ready = asyncio.Event()
        self.failed: str | None = None

    async def run(self, session: aiohttp.ClientSession, stop: asyncio.Event) -> None:
        try:
            async with session.ws_connect(self.url, max_msg_size=0) as ws:
                inflate = zlib.decompressobj() if self.compressed else None

                async def recv() -> dict:
                    msg = await ws.receive()
                    if msg.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                        raise ConnectionError(f"closed: {msg.type} {msg.data}")
                    raw = inflate.decompress(msg.data) if inflate else msg.data
                    return json.loads(raw)

                hello = await recv()
                interval = hello["d"]["heartbeat_interval"] / 1000
                await ws.send_json(
                    {
                        "op": 2,
                        "d": {
                            "token": self.token,
                            "intents": 513,
                            "properties": {"os": "linux", "browser": "bench", "device": "bench"},
                        },
                    }
                )
                while (await recv()).get("t") != "READY":
                    pass
                self.ready.set()
                await self._beat(ws, recv, interval, stop)
        except Exception as exc:  # reported, not raised: one failure must not stop the bench
            self.failed = repr(exc)
            self.ready.set()

    async def _beat(self, ws, recv, interval: float, stop: asyncio.Event) -> None:
        await asyncio.sleep(interval * random.random())
        while not stop.is_set():
            sent = time.perf_counter()
            await ws.send_json({"op": 1, "d": None})
            while (await recv()).get("op") != 11:
                pass
            self.latencies.append(time.perf_counter() - sent)
            try:
                await asyncio.wait_for(stop.wait(), interval)
            except TimeoutError:
                pass


async def worker_main(url: str, tokens: list[str], compressed: bool, hold: float) -> None:
    stop = asyncio.Event()
    holders = [Holder(url, t, compressed) for t in tokens]
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn) as session:
        tasks = []
        for h in holders:
            tasks.append(asyncio.create_task(h.run(session, stop)))
            await asyncio.sleep(0.001)
        await asyncio.gather(*(h.ready.wait() for h in holders))
        ok = sum(1 for h in holders if not h.failed)
        print(json.dumps({"event": "connected", "ok": ok}), flush=True)
        await asyncio.sleep(hold)
        stop.set()
        await asyncio.gather(*tasks)
    lat = [x for h in holders for x in h.latencies]
    fails = [h.failed for h in holders if h.failed][:3]
    print(json.dumps({"event": "done", "latencies": lat, "failures": fails}), flush=True)


# ---- parent side ------------------------------------------------------------------------
async def create_tenants(base: str, n: int) -> list[str]:
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        sem = asyncio.Semaphore(32)

        async def one(i: int) -> str:
            async with sem:
                bot = (await http.post("/_sandbox/bots", json={"name": f"bot{i}"})).json()
                await http.post(
                    "/_sandbox/guilds",
                    json={
                        "name": f"tenant{i}",
                        "bots": [bot["application_id"]],
                        "channels": [{"name": "loja"}],
                        "roles": [{"name": "VIP"}],
                    },
                )
                return bot["token"]

        return list(await asyncio.gather(*(one(i) for i in range(n))))


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] * 1000


async def run(args: argparse.Namespace) -> None:
    extra = ["--no-mp", "--heartbeat-interval", str(args.heartbeat_ms), "--log-level", "WARNING"]
    with SandboxProcess(*extra) as sb:
        base = sb.urls["DISCORD_OAUTH_BASE"]
        pid = sb.urls["pid"]
        idle = memory_kb(pid)
        t0 = time.monotonic()
        tokens = await create_tenants(base, args.connections)
        print(f"created {len(tokens)} bots+guilds in {time.monotonic() - t0:.1f}s", flush=True)
        populated = memory_kb(pid)
        url = base.replace("http://", "ws://") + "/gateway?v=10&encoding=json"
        if not args.no_zlib:
            url += "&compress=zlib-stream"
        procs = []
        for i in range(args.workers):
            chunk = tokens[i :: args.workers]
            procs.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    __file__,
                    "--worker",
                    url,
                    str(args.hold),
                    "0" if args.no_zlib else "1",
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    limit=64 * 1024 * 1024,
                )
            )
            procs[-1].stdin.write(("\n".join(chunk) + "\n").encode())
            await procs[-1].stdin.drain()
            procs[-1].stdin.close()
        t1 = time.monotonic()
        connected = sum([json.loads(await p.stdout.readline())["ok"] for p in procs])
        print(f"{connected} sessions READY in {time.monotonic() - t1:.1f}s", flush=True)
        async with httpx.AsyncClient() as http:
            health = (await http.get(base + "/_sandbox/health")).json()
        await asyncio.sleep(min(5.0, args.hold / 2))
        held = memory_kb(pid)
        results = [json.loads(await p.stdout.readline()) for p in procs]
        for p in procs:
            await p.wait()
    lat = [x for r in results for x in r["latencies"]]
    fails = [f for r in results for f in r["failures"]]
    report(args, connected, health["connections"], idle, populated, held, lat, fails)


def report(args, connected, server_conns, idle, populated, held, lat, fails) -> None:
    mb = 1024
    print("--- sandbox gateway bench ---")
    print(
        f"encoding: json{'' if args.no_zlib else ' + zlib-stream'}; "
        f"heartbeat every {args.heartbeat_ms} ms; hold {args.hold:.0f} s; "
        f"{args.workers} client processes"
    )
    print(f"connections held: {connected}/{args.connections} (sandbox counts {server_conns})")
    print(f"sandbox memory idle:      RSS {idle['rss'] / mb:.1f} MB, USS {idle['uss'] / mb:.1f} MB")
    print(
        f"  with {args.connections} bots+guilds: RSS {populated['rss'] / mb:.1f} MB, "
        f"USS {populated['uss'] / mb:.1f} MB"
    )
    print(
        f"  holding sessions:       RSS {held['rss'] / mb:.1f} MB, USS {held['uss'] / mb:.1f} MB"
        f" (~{(held['uss'] - populated['uss']) / max(connected, 1):.0f} kB/connection)"
    )
    print(
        f"heartbeat ACK latency: n={len(lat)} p50={pct(lat, 50):.2f} ms "
        f"p99={pct(lat, 99):.2f} ms max={max(lat, default=0) * 1000:.2f} ms"
    )
    if fails:
        print(f"failures (first): {fails[:3]}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        url, hold, compressed = sys.argv[2], float(sys.argv[3]), sys.argv[4] == "1"
        tokens = [t for t in sys.stdin.read().split() if t]
        asyncio.run(worker_main(url, tokens, compressed, hold))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--hold", type=float, default=30.0, help="seconds to hold (max 60)")
    parser.add_argument("--heartbeat-ms", type=int, default=5000)
    parser.add_argument("--no-zlib", action="store_true")
    args = parser.parse_args()
    args.hold = min(args.hold, 60.0)
    asyncio.run(asyncio.wait_for(run(args), timeout=110))


if __name__ == "__main__":
    main()
