"""What the database's fencing check costs a delivery (issue 15).

Runs the database side of a delivery (`prepare` → `record_send_attempt` → `record_sent` →
`mark_delivered`, four transactions) for paid orders of one bot, once without a fence (as
before) and once with the worker's `Fence` (each transaction starts with the mark's upsert),
alternating in rounds. Sequential: time per delivery; concurrent: 8 deliveries of the same bot
at a time (the delivery consumer's slots), so the mark's row is contended on PostgreSQL.

    .venv/bin/python bench/fencing_overhead.py [--orders 200] [--postgres postgres://…/postgres]

(SQLite in a temp dir by default; `--postgres` runs it on a scratch PostgreSQL database.)
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._world import create_database, drop_database, pct  # noqa: E402
from core.vault import TokenVault, generate_key  # noqa: E402

ROUNDS = 4
SLOTS = 8
VAULT = TokenVault([generate_key()])


async def _orders(count: int) -> tuple[int, list[int]]:
    from fleet.models import BotInstance
    from shop.models import Account, Order, Product, Tenant, Variation
    from shop.orders import transition
    from shop.states import OrderStatus
    from shop.stock import add_stock

    owner = await Account.create(discord_id=uuid.uuid4().hex[:18], username="s")
    tenant = await Tenant.create(owner=owner, name="Loja")
    inst = await BotInstance.create(tenant=tenant, token_enc="x")
    product = await Product.create(tenant=tenant, name="Key")
    variation = await Variation.create(tenant=tenant, product=product, name="v", price_cents=100)
    await add_stock(
        VAULT,
        tenant.id,
        variation.id,
        "\n".join(f"K-{uuid.uuid4().hex}" for _ in range(count)),
        "bench",
        hash_key="bench-stock-hash-key",
    )
    ids = []
    for _ in range(count):
        order = await Order.create(
            tenant=tenant,
            instance=inst,
            product=product,
            variation=variation,
            interaction_id=uuid.uuid4().hex[:20],
            buyer_discord_id="555",
            quantity=1,
            unit_price_cents=100,
            total_cents=100,
        )
        await transition(order.id, OrderStatus.PAID, "bench")
        ids.append(order.id)
    return inst.id, ids


async def _deliver(order_id: int, fence) -> float:
    from shop import delivery
    from shop.models import DeliveryPath

    start = time.perf_counter()
    prepared = await delivery.prepare(order_id, VAULT, "bench", fence)
    await delivery.record_send_attempt(order_id, prepared.nonce, "dm", fence)
    await delivery.record_sent(order_id, "dm", f"m{order_id}", fence)
    await delivery.mark_delivered(order_id, DeliveryPath.DM, "bench", fence)
    return (time.perf_counter() - start) * 1000


async def _concurrent(ids: list[int], fence) -> float:
    """Deliveries per second with SLOTS at a time."""
    slots = asyncio.Semaphore(SLOTS)

    async def one(oid: int) -> None:
        async with slots:
            await _deliver(oid, fence)

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in ids))
    return len(ids) / (time.perf_counter() - start)


async def run(label: str, url: str, orders: int) -> None:
    from core.db import close_db, init_db
    from fleet import fencing
    from fleet.fencing import Fence
    from ops.migrations import apply

    await apply(url)
    await close_db()
    await init_db(url)
    try:
        iid, ids = await _orders(orders * 2)
        await fencing.claim(iid, 7)
        fence = Fence(iid, 7)
        half = len(ids) // 2
        seq = {"none": [], "fence": []}
        step = max(1, half // ROUNDS)
        for r in range(ROUNDS):
            chunk = ids[r * step : (r + 1) * step]
            for n, oid in enumerate(chunk):  # alternate, so drift hits both alike
                key = "fence" if n % 2 else "none"
                seq[key].append(await _deliver(oid, fence if key == "fence" else None))
        rest = ids[half:]
        quarter = len(rest) // 2
        rate_none = await _concurrent(rest[:quarter], None)
        rate_fence = await _concurrent(rest[quarter:], fence)
        for key in ("none", "fence"):
            ms = seq[key]
            print(
                f"{label} sequential fence={key:<5} n={len(ms)} per delivery p50 "
                f"{pct(ms, 50):.2f} ms p99 {pct(ms, 99):.2f} ms"
            )
        print(
            f"{label} {SLOTS} concurrent (one bot): {rate_none:.0f} deliveries/s without fence, "
            f"{rate_fence:.0f} with"
        )
    finally:
        await close_db()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--postgres", default="", help="admin URL: run on PostgreSQL instead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vitrine-fence-") as tmp:
        url = await create_database(args.postgres, Path(tmp))
        try:  # one database per process: tortoise's context does not survive a second init
            await run("postgres" if args.postgres else "sqlite", url, args.orders)
        finally:
            await drop_database(args.postgres, url)


if __name__ == "__main__":
    asyncio.run(main())
