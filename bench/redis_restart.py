"""Redis SIGKILLed and restarted (AOF) under a steady purchase load: payment → DM latency.

Everything real on loopback: the sandbox (Discord + Mercado Pago) in this process, a private
redis-server with `--appendonly yes`, a SQLite database, the orchestrator with one worker per
bot, and the reconciler's loop (`shop.payments.payment_reconciler.run_forever`, default 30 s
passes, with its delivery relay). Approvals are fired at a fixed rate and applied as the
portal's webhook handler does (`sync_payment`); in the middle Redis is killed with SIGKILL and
started again on the same port and AOF directory `--down` seconds later.

    .venv/bin/python bench/redis_restart.py [--bots 5] [--rate 5] [--seconds 30] [--down 1]

Prints orders paid, delivered and lost, payment → DM latency (p50/p99/max) overall and the
max for orders paid while Redis was down or coming back, and whether every worker survived.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from storefront_delivery import (  # noqa: E402
    hook_dm_times,
    make_orders,
    make_stores,
    pct,
)

from core.db import close_db, init_db  # noqa: E402
from ops.fleet_harness import STOREFRONT_ENV, Fleet, payment_services  # noqa: E402
from ops.migrations import apply  # noqa: E402
from ops.process_tools import free_port, wait_port  # noqa: E402
from sandbox.discord.client import DiscordSandbox  # noqa: E402
from sandbox.mercadopago.client import MercadoPagoSandboxClient  # noqa: E402
from sandbox.server import run_sandbox  # noqa: E402


class Redis:
    def __init__(self, workdir: Path) -> None:
        self.port, self.dir = free_port(), workdir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--dir",
                str(self.dir),
            ],
            stdout=subprocess.DEVNULL,
        )
        wait_port(self.port, timeout=10)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)


async def approve_at_rate(mpc, svc, orders, rate: float, approved: dict[str, float]) -> None:
    from shop.models import Payment
    from shop.payments.sync import sync_payment

    start = time.monotonic()

    async def one(i: int, order_id: int, buyer_id: str) -> None:
        await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
        payment = await Payment.get(order_id=order_id)
        await mpc.approve(int(payment.provider_payment_id))
        approved[buyer_id] = time.monotonic()
        for attempt in range(5):  # as MP would re-send the webhook after an error
            try:
                await sync_payment(svc, str(payment.id), "bench:webhook")
                return
            except Exception as exc:  # noqa: BLE001 - e.g. SQLite "database is locked"
                print(f"sync retry {attempt + 1}: {exc}", file=sys.stderr)
                await asyncio.sleep(0.2)

    await asyncio.gather(*(one(i, oid, buyer) for i, (oid, buyer, _) in enumerate(orders)))


async def main(args: argparse.Namespace) -> None:
    from fleet.states import InstanceState
    from shop.models import Order
    from shop.payments.payment_reconciler import run_forever

    work = Path(tempfile.mkdtemp(prefix="vitrine-bench-redis-"))
    redis = Redis(work)
    redis.start()
    redis_url = f"redis://127.0.0.1:{redis.port}/0"
    db_url = f"sqlite://{work / 'bench.sqlite3'}"
    await apply(db_url)
    await close_db()
    await init_db(db_url)
    per_bot = max(1, int(args.rate * args.seconds / args.bots))
    try:
        async with (
            run_sandbox("127.0.0.1", 0, mp_port=0) as sb,
            DiscordSandbox(sb.discord_base) as dc,
            MercadoPagoSandboxClient(sb.mp_api_base) as mpc,
        ):
            env = dict(STOREFRONT_ENV, MERCADOPAGO_API_BASE=sb.mp_api_base, LOG_LEVEL="WARNING")
            fleet = Fleet(work, db_url, redis_url, sb.discord_api_base, extra_env=env)
            svc = payment_services(sb, redis_url)
            stop = asyncio.Event()
            reconciler = asyncio.create_task(run_forever(svc, 30.0, stop))
            try:
                stores = await make_stores(fleet, dc, args.bots, per_bot)
                orders = await make_orders(svc, dc, stores, per_bot)
                fleet.start()
                for _, _, _, inst, _ in stores:
                    await fleet.wait_state(inst.id, InstanceState.ONLINE, timeout=60)
                pids = {inst.id: (await fleet.record(inst.id)).pid for *_, inst, _ in stores}
                await asyncio.sleep(1.0)  # consumers subscribed after READY
                dm_at = hook_dm_times(sb.discord_state)
                approved: dict[str, float] = {}
                load = asyncio.create_task(approve_at_rate(mpc, svc, orders, args.rate, approved))
                await asyncio.sleep(args.seconds / 2)
                killed_at = time.monotonic()
                redis.kill()
                await asyncio.sleep(args.down)
                redis.start()
                back_at = time.monotonic()
                await load
                deadline = time.monotonic() + 60
                while len(dm_at) < len(orders) and time.monotonic() < deadline:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
                lat = {b: dm_at[b] - approved[b] for b in approved if b in dm_at}
                # paid while Redis was down, or in the 2 s it took to come back
                hit = [v for b, v in lat.items() if killed_at <= approved[b] <= back_at + 2]
                delivered = await Order.filter(status="delivered").count()
                paid = len(approved)
                print(
                    f"bots={args.bots} rate={args.rate}/s seconds={args.seconds} "
                    f"redis down {back_at - killed_at:.1f}s (SIGKILL, AOF restart) "
                    f"cpus={os.cpu_count()} load={os.getloadavg()[0]:.1f}"
                )
                print(
                    f"orders paid={paid} delivered={delivered} DMs={len(lat)} "
                    f"lost={paid - len(lat)}"
                )
                ms = sorted(v * 1000 for v in lat.values())
                print(
                    f"payment->DM ms: p50={pct(ms, 50):.0f} p99={pct(ms, 99):.0f} max={max(ms):.0f}"
                )
                print(
                    f"paid during the outage: {len(hit)} orders, max payment->DM "
                    f"{max(hit, default=0) * 1000:.0f} ms"
                )
                now = {}
                for iid in pids:
                    for _ in range(3):
                        try:
                            now[iid] = (await fleet.record(iid)).pid
                            break
                        except Exception:  # noqa: BLE001 - the harness client's dead socket
                            await asyncio.sleep(0.2)
                same = sum(1 for iid, pid in pids.items() if now.get(iid) == pid)
                print(f"workers that survived the restart: {same}/{len(pids)}")
            finally:
                stop.set()
                await reconciler
                await fleet.cleanup()
                await svc.gateway.aclose()
                await svc.redis.aclose()
    finally:
        await close_db()
        if redis.proc is not None and redis.proc.poll() is None:
            redis.proc.terminate()
            redis.proc.wait(10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bots", type=int, default=5)
    parser.add_argument("--rate", type=float, default=5.0, help="approvals per second")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--down", type=float, default=1.0, help="seconds Redis stays dead")
    asyncio.run(main(parser.parse_args()))
