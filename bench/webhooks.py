"""Bench: verified Mercado Pago webhooks per second on the portal, next to a no-op endpoint.

    .venv/bin/python bench/webhooks.py [--requests 3000] [--concurrency 32] [--rounds 2]

Starts, on loopback only: a private redis-server, the Mercado Pago stand-in (its own process),
and the portal served by hypercorn in its own process with one extra route added to *this
bench's* app instance only: `POST /webhooks/noop`, which reads the body and answers 200 through
the same middleware as the webhook route. Then it alternates phases of N requests each:
no-op, then signed webhooks (each a new notification for one real PIX payment, so each is
verified, recorded in `webhook_events`, deduplicated and then fetched and reconciled in the
background), and finally one webhook for each of `--distinct` other payments (no coalescing
possible: every one costs a GET to the stand-in and a reconciliation). Prints requests/s and
the ratio to the no-op rate (target >= 50 %). Bounded: about 15 s (each wait for the
background reconciliation gives up after 60 s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._world import redis_argv  # noqa: E402
from ops.process_tools import free_port, wait_port  # noqa: E402
from shop.payments.signature import sign  # noqa: E402

SECRET = "bench-webhook-secret-0123456789"


# ---- the served side ------------------------------------------------------------------------
def serve(port: int) -> None:
    """Run the portal (plus the bench-only no-op route) with hypercorn until SIGTERM."""
    from quart import jsonify, request

    from core.logging import setup_logging
    from core.settings import load_settings
    from web.common import run
    from web.portal import create_app

    settings = load_settings()
    setup_logging("portal-bench", settings.log_dir, "WARNING", stderr=False)
    app = create_app(settings)

    async def noop():  # type: ignore[no-untyped-def]
        await request.get_data()
        return jsonify({"status": "ok"})

    # Same blueprint as the webhook, so the same hooks (CSRF exemption, headers) apply.
    app.add_url_rule("/webhooks/noop", "mercadopago_webhooks.noop", noop, methods=["POST"])
    run(app, "127.0.0.1", port)


# ---- the load generator: raw HTTP/1.1 keep-alive, so the client costs little ---------------
async def _one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)
    return status


def _request(port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def webhook_request(port: int, payment_id: str, notification_id: int) -> bytes:
    rid = str(uuid.uuid4())
    ts = str(int(time.time() * 1000))
    body = json.dumps(
        {
            "action": "payment.updated",
            "api_version": "v1",
            "data": {"id": payment_id},
            "id": notification_id,
            "live_mode": False,
            "type": "payment",
            "user_id": 1,
        }
    ).encode()
    signature = f"ts={ts},v1={sign(SECRET, payment_id, rid, ts)}"
    headers = {"x-request-id": rid, "x-signature": signature}
    return _request(port, f"/webhooks/mercadopago?data.id={payment_id}&type=payment", body, headers)


async def phase(port: int, requests: list[bytes], concurrency: int) -> tuple[float, dict]:
    """Send every request over `concurrency` keep-alive connections; (req/s, status counts)."""
    queue = list(reversed(requests))
    statuses: dict[int, int] = {}

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while queue:
                status = await _one(reader, writer, queue.pop())
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(requests) / (time.perf_counter() - started), statuses


# ---- set-up -------------------------------------------------------------------------------
async def make_payments(env: dict[str, str], count: int) -> list[str]:
    """A store, `count` pending orders and their PIX payments at the stand-in; the MP ids."""
    from core.db import close_db, init_db
    from fleet.models import BotInstance
    from ops.migrations import apply
    from shop.models import Account, Order, Product, Tenant, Variation
    from shop.payments.mercadopago import MercadoPagoGateway
    from shop.payments.service import PaymentServices, create_pix_payment

    await apply(env["DATABASE_URL"])
    await close_db()
    await init_db(env["DATABASE_URL"])
    owner = await Account.create(discord_id="1", username="bench")
    tenant = await Tenant.create(owner=owner, name="Bench")
    inst = await BotInstance.create(tenant=tenant, token_enc="x")
    product = await Product.create(tenant=tenant, name="Key")
    variation = await Variation.create(tenant=tenant, product=product, name="v", price_cents=1990)
    gateway = MercadoPagoGateway(
        env["MERCADOPAGO_API_BASE"], "TEST-bench", "http://127.0.0.1:9/unused"
    )
    svc = PaymentServices(gateway, None, 500, 7)

    async def one(i: int) -> str:
        order = await Order.create(
            tenant=tenant,
            instance=inst,
            product=product,
            variation=variation,
            interaction_id=str(i),
            buyer_discord_id="2",
            quantity=1,
            unit_price_cents=1990,
            total_cents=1990,
        )
        return str((await create_pix_payment(svc, order.id, "bench")).provider_payment_id)

    ids = []
    for start_at in range(0, count, 8):  # the stand-in renders a QR PNG per charge: go easy
        ids += await asyncio.gather(*(one(i) for i in range(start_at, min(count, start_at + 8))))
    await gateway.aclose()
    await close_db()
    return ids


async def wait_processed(database_url: str, within: float = 60.0) -> None:
    for _ in range(int(within * 10)):
        if not (await outcomes(database_url)).get("accepted"):
            return
        await asyncio.sleep(0.1)


async def outcomes(database_url: str, show_errors: bool = False) -> dict[str, int]:
    from core.db import close_db, init_db
    from shop.models import WebhookEvent

    await init_db(database_url)
    counts: dict[str, int] = {}
    for outcome, detail in await WebhookEvent.all().values_list("outcome", "detail"):
        counts[outcome] = counts.get(outcome, 0) + 1
        if outcome == "error" and show_errors:
            print("error:", detail[:200])
    await close_db()
    return counts


def start(cmd: list[str], env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    """Start a child and wait for its port. Its stderr goes to `log`, never to a pipe this
    process does not read: once such a pipe is full the child blocks on its next write (the
    stand-in's access log froze it that way after ~550 requests)."""
    with log.open("wb") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)
    try:
        wait_port(port)
    except RuntimeError:
        proc.kill()
        proc.wait()
        tail = log.read_bytes().decode(errors="replace")[-2000:]
        raise RuntimeError(f"{cmd[:3]} did not start: {tail}") from None
    return proc


async def bench(
    args: argparse.Namespace, env: dict[str, str], port: int, payment_ids: list[str]
) -> None:
    payment_id, distinct = payment_ids[0], payment_ids[1:]
    noop = [_request(port, "/webhooks/noop", b'{"id": 1}', {}) for _ in range(args.requests)]
    await phase(port, noop[:200], args.concurrency)  # warm-up
    rates: dict[str, list[float]] = {"noop": [], "webhook": []}
    next_id = 1
    for _ in range(args.rounds):
        rate, statuses = await phase(port, noop, args.concurrency)
        assert set(statuses) == {200}, statuses
        rates["noop"].append(rate)
        hooks = [webhook_request(port, payment_id, next_id + i) for i in range(args.requests)]
        next_id += args.requests
        rate, statuses = await phase(port, hooks, args.concurrency)
        assert set(statuses) == {200}, statuses
        rates["webhook"].append(rate)
    await wait_processed(env["DATABASE_URL"])
    hooks = [webhook_request(port, pid, next_id + i) for i, pid in enumerate(distinct)]
    started = time.perf_counter()
    distinct_rate = (await phase(port, hooks, args.concurrency))[0] if hooks else 0.0
    await wait_processed(env["DATABASE_URL"])
    reconciled_rate = len(hooks) / (time.perf_counter() - started)
    noop_rate, hook_rate = max(rates["noop"]), max(rates["webhook"])
    print(
        f"requests per phase: {args.requests}, concurrency: {args.concurrency}, "
        f"rounds: {args.rounds}, cpus: {os.cpu_count()}"
    )
    print(
        f"no-op endpoint      : {noop_rate:8.0f} req/s  (rounds: "
        f"{', '.join(f'{r:.0f}' for r in rates['noop'])})"
    )
    print(
        f"verified webhooks   : {hook_rate:8.0f} req/s  (rounds: "
        f"{', '.join(f'{r:.0f}' for r in rates['webhook'])})"
    )
    print(f"ratio               : {hook_rate / noop_rate:8.1%}  (target >= 50 %)")
    print(
        f"distinct payments   : {distinct_rate:8.0f} req/s  ({len(distinct)} webhooks, one "
        f"per payment; ratio {distinct_rate / noop_rate:.1%})"
    )
    print(
        f"  ... reconciled    : {reconciled_rate:8.0f} payments/s (GET from the stand-in + "
        f"state check, 4 workers; until no event is left `accepted`)"
    )
    print(f"webhook_events      : {await outcomes(env['DATABASE_URL'], show_errors=True)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--distinct", type=int, default=300, help="payments for the one-webhook-per-payment phase"
    )
    parser.add_argument(
        "--database-url", default=None, help="default: a fresh SQLite file in a temp dir"
    )
    parser.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve)
        return
    tmp = Path(tempfile.mkdtemp(prefix="vitrine-bench-webhooks-"))
    procs: list[subprocess.Popen] = []
    try:
        redis_port, mp_port, portal_port = free_port(), free_port(), free_port()
        procs.append(
            start(
                redis_argv(redis_port, workdir=tmp),
                os.environ.copy(),
                redis_port,
                tmp / "redis.stderr",
            )
        )
        procs.append(
            start(
                [
                    sys.executable,
                    "-m",
                    "sandbox.mercadopago",
                    "--port",
                    str(mp_port),
                    "--webhook-secret",
                    SECRET,
                ],
                os.environ.copy(),
                mp_port,
                tmp / "mercadopago.stderr",
            )
        )
        env = {
            **os.environ,
            "DATA_DIR": str(tmp / "data"),
            "LOG_DIR": str(tmp / "logs"),
            "DATABASE_URL": args.database_url or f"sqlite://{tmp / 'bench.sqlite3'}",
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "MERCADOPAGO_API_BASE": f"http://127.0.0.1:{mp_port}",
            "MERCADOPAGO_ACCESS_TOKEN": "TEST-bench",
            "MERCADOPAGO_WEBHOOK_SECRET": SECRET,
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{portal_port}",
            "PORTAL_PORT": str(portal_port),
            "LOG_LEVEL": "WARNING",
            "VITRINE_ENV": "development",
        }
        payment_ids = asyncio.run(make_payments(env, 1 + args.distinct))
        procs.append(
            start(
                [sys.executable, __file__, "--serve", str(portal_port)],
                env,
                portal_port,
                tmp / "portal.stderr",
            )
        )
        asyncio.run(bench(args, env, portal_port, payment_ids))
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
