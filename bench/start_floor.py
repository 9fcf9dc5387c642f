"""The floor of a mass start: N bare disnake bots forked from a preloaded, gc.freeze()d
template log in to the sandbox, with none of Vitrine's code (no database, no Redis, no
extensions, no page sharing). What a start costs this box when a bot is only disnake's login.

    .venv/bin/python bench/start_floor.py [--bots 1000] [--spawn-rate 100]
        [--kind client|interaction] [--mem-floor-gib 2] [--timeout 300]

`--kind client`: a `disnake.Client`; `interaction`: a `commands.InteractionBot` with one
global slash command (disnake then syncs its commands at login, as a worker does). Intents
are the worker's (`worker.extensions.required_intents` of the default extensions).

Prints when half and all were online (READY) after the first fork, a bot's CPU from its fork
to READY (p50 / p90), the CPU the children, the sandbox and the whole machine spent meanwhile
(per bot), and USS p50 of 20 bots. Stops forking while `MemAvailable` is below
`--mem-floor-gib`. Loopback only; every process it starts is stopped at the end.
"""

# A bench script: blocking process management is deliberate here.
# ruff: noqa: ASYNC109, ASYNC220, ASYNC230, ASYNC240

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import disnake  # noqa: E402 (preloaded by the template: every bot shares it)
from disnake.ext import commands  # noqa: E402

from bench._memory import CLK, cpu_seconds, mem_available, uss_kb  # noqa: E402


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))]


def machine_busy_ticks() -> int:
    """Busy jiffies of every CPU since boot (user .. steal, without idle and iowait)."""
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    return sum(fields) - fields[3] - fields[4]


# --- the template (a process of its own: it forks the bots) -------------------------------
async def status(inter: disnake.ApplicationCommandInteraction) -> None:
    await inter.response.send_message("ok")


def child(token: str, api: str, intents: int, kind: str, out: int, index: int) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    disnake.http.Route.BASE = api
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    flags = disnake.Intents._from_value(intents)
    client: disnake.Client
    if kind == "interaction":
        client = commands.InteractionBot(intents=flags)
        client.slash_command(name="status", description="status")(status)
    else:
        client = disnake.Client(intents=flags)

    async def on_socket_event_type(event: str) -> None:
        if event == "READY":
            line = f"{index} {time.time():.4f} {time.process_time() * 1000:.1f}\n"
            os.write(out, line.encode())

    client.add_listener(on_socket_event_type)
    loop.run_until_complete(client.start(token))


def template(args: argparse.Namespace) -> None:
    setup = json.loads(Path(args.template).read_text())
    tokens, api, intents = setup["tokens"], setup["api"], setup["intents"]
    gc.collect()
    gc.freeze()
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    pids: list[int] = []
    online: dict[int, tuple[float, float]] = {}
    buf = b""

    def drain(wait: float) -> None:
        nonlocal buf
        if select.select([read_end], [], [], wait)[0]:
            try:
                buf += os.read(read_end, 1 << 16)
            except BlockingIOError:
                return
            *lines, buf = buf.split(b"\n")
            for line in lines:
                i, at, cpu = line.split()
                online[int(i)] = (float(at), float(cpu))

    floor = args.mem_floor_gib * 1024**3
    busy0, t0, wall0 = machine_busy_ticks(), time.monotonic(), time.time()
    sandbox_cpu0 = cpu_seconds([args.sandbox_pid])
    stopped_at_memory = False
    for n, token in enumerate(tokens):
        due = t0 + n / args.spawn_rate
        while (left := due - time.monotonic()) > 0:
            drain(left)
        if mem_available() < floor:
            stopped_at_memory = True
            break
        pid = os.fork()
        if pid == 0:
            try:
                os.close(read_end)
                child(token, api, intents, args.kind, write_end, n)
            finally:
                os._exit(1)
        pids.append(pid)
    deadline = t0 + args.timeout
    while len(online) < len(pids) and time.monotonic() < deadline:
        drain(0.5)
    busy = (machine_busy_ticks() - busy0) / CLK
    last = max((at for at, _ in online.values()), default=wall0)
    children_cpu = cpu_seconds(pids)
    sandbox_cpu = cpu_seconds([args.sandbox_pid]) - sandbox_cpu0
    times = sorted(at - wall0 for at, _ in online.values())
    cpus = [cpu for _, cpu in online.values()]
    n_on = len(online)
    print(
        f"{args.kind}: {n_on}/{len(pids)} bots online (READY) "
        f"{'(stopped forking: MemAvailable floor) ' if stopped_at_memory else ''}"
        f"at {args.spawn_rate:.0f} forks/s; half online after "
        f"{times[len(times) // 2] if times else float('nan'):.1f} s, all after "
        f"{last - wall0:.1f} s",
        flush=True,
    )
    if cpus:
        print(
            f"a bot's CPU from fork to READY: p50 {statistics.median(cpus):.1f} ms, "
            f"p90 {pct(cpus, 90):.1f} ms",
            flush=True,
        )
    print(
        f"CPU until the last READY: bots {children_cpu:.1f} s ({children_cpu / n_on * 1000:.0f} "
        f"ms each), sandbox {sandbox_cpu:.1f} s, whole machine {busy:.1f} s "
        f"({busy / n_on * 1000:.0f} ms per bot all in)",
        flush=True,
    )
    time.sleep(5)
    sample = [uss_kb(p)[0] for p in pids[:: max(1, len(pids) // 20)]]
    print(f"USS p50 of {len(sample)} bots: {statistics.median(sample) / 1024:.1f} MB", flush=True)
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    for pid in pids:
        os.waitpid(pid, 0)


# --- the bench -----------------------------------------------------------------------------
async def make_bots(control_url: str, count: int) -> list[str]:
    from sandbox.discord.client import DiscordSandbox

    tokens: list[str] = []
    async with DiscordSandbox(control_url, timeout=30) as dc:
        for start in range(0, count, 200):  # the control client's pool: not 2,000 at once
            bots = await asyncio.gather(
                *(dc.create_bot(f"Loja {n}") for n in range(start, min(count, start + 200)))
            )
            tokens += [b.token for b in bots]
    return tokens


def worker_intents() -> int:
    from worker import extensions

    return extensions.required_intents(extensions.enabled({})).value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bots", type=int, default=1000)
    parser.add_argument("--spawn-rate", type=float, default=100.0)
    parser.add_argument("--kind", choices=("client", "interaction"), default="client")
    parser.add_argument("--mem-floor-gib", type=float, default=2.0)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--template", help=argparse.SUPPRESS)
    parser.add_argument("--sandbox-pid", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.template:
        template(args)
        return
    from sandbox.server import SandboxProcess

    with SandboxProcess("--no-mp") as sb, tempfile.TemporaryDirectory() as tmp:
        tokens = asyncio.run(make_bots(sb.urls["SANDBOX_CONTROL_URL"], args.bots))
        setup = Path(tmp) / "setup.json"
        setup.write_text(
            json.dumps(
                {
                    "tokens": tokens,
                    "api": sb.urls["DISCORD_API_BASE"],
                    "intents": worker_intents(),
                }
            )
        )
        argv = [sys.executable, __file__, *sys.argv[1:], "--template", str(setup)]
        subprocess.run([*argv, "--sandbox-pid", str(sb.pid)], check=True)


if __name__ == "__main__":
    main()
