"""What every partition scenario must end with (`check_invariants`) and the observations
the tests share; the two-host world itself is `ops.netns_world`."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

from fleet.leases import Lease
from ops.netns_world import World, delivered_from, retry, two_hosts, wait_gone

__all__ = ["World", "delivered_from", "retry", "two_hosts", "wait_gone"]

TTL = 3.0  # VITRINE_LEASE_TTL_S: short, so a scenario lasts seconds (3 x TTL faults)
KEY = re.compile(r"KEY-\d+-\d+")


async def a_has_delivered(w: World, timeout: float = 20.0) -> None:  # noqa: ASYNC109
    """Wait until the sandbox has seen node A create a message (the load reached its bots):
    also proves the sandbox tells the hosts apart, or the later "nothing from A" means nothing."""
    deadline = time.monotonic() + timeout
    while not await delivered_from(w, "a", 0):
        assert time.monotonic() < deadline, "no message from host A's address"
        await asyncio.sleep(0.2)


async def wait_all_delivered(w: World, timeout: float = 60.0) -> None:  # noqa: ASYNC109
    from shop.models import Order

    ids = [o[0] for o in w.orders]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = await Order.filter(id__in=ids, status="delivered").count()
        if done == len(ids):
            return
        await asyncio.sleep(0.25)
    statuses = await Order.filter(id__in=ids).values_list("id", "status")
    raise AssertionError(f"not every paid order was delivered: {statuses}\n{w.a.output()}")


async def one_session_each(w: World, timeout: float = 15.0) -> list[dict[str, Any]]:  # noqa: ASYNC109
    """Each bot ends with exactly one gateway session (asking the sandbox)."""
    infos: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        infos = [await w.dc.bot_info(s[0]) for s in w.stores]
        if all(i["open_connections"] == 1 for i in infos):
            return infos
        await asyncio.sleep(0.2)
    raise AssertionError(f"open gateway sessions: {[i['open_connections'] for i in infos]}")


async def check_invariants(w: World) -> list[dict[str, Any]]:
    """Every paid order delivered with exactly one DM, no stock item (key) in two orders,
    every ledger journal balanced, one gateway session per bot. Returns the bots' infos."""
    from tortoise.functions import Sum

    from shop.models import LedgerEntry, Order, StockItem

    await wait_all_delivered(w)
    keys_seen: dict[str, int] = {}
    for order_id, buyer_id, _bot_user in w.orders:
        bot = next(s[0] for s in w.stores if s[0].user_id == _bot_user)
        dms = await w.dc.dms(buyer_id, bot)
        assert len(dms) == 1, f"order {order_id}: {len(dms)} DMs"
        for key in set(KEY.findall(json.dumps(dms[0]))):
            assert key not in keys_seen, (
                f"{key} delivered to orders {keys_seen[key]} and {order_id}"
            )
            keys_seen[key] = order_id
    assert len(keys_seen) == len(w.orders), "each DM carries its order's key"
    sold = await StockItem.filter(order_id__in=[o[0] for o in w.orders]).values_list(
        "order_id", flat=True
    )
    assert sorted(sold) == sorted(o[0] for o in w.orders), "one stock item per order"
    assert await Order.filter(id__in=[o[0] for o in w.orders], status="delivered").count() == len(
        w.orders
    )
    sums = (
        await LedgerEntry.all()
        .group_by("txn_id")
        .annotate(s=Sum("amount_cents"))
        .values_list("s", flat=True)
    )
    assert sums and all(int(s) == 0 for s in sums), "every ledger journal balanced"
    return await one_session_each(w)


def lease_token(raw: str | None) -> int:
    lease = Lease.parse(raw)
    return lease.token if lease else 0
