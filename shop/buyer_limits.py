"""One buyer cannot hold a store's stock hostage: each unpaid order reserves stock and creates
a PIX charge, so a store caps the pending orders one buyer may hold at once
(`Tenant.max_open_orders_per_buyer`, default 2) and refuses buyers on its blocklist.

`guard` runs inside checkout's transaction, before the order is written: it takes a lock per
(store, buyer) — a PostgreSQL transaction-level advisory lock; SQLite transactions are
`BEGIN IMMEDIATE`, so they are serialised already — and then counts, so two concurrent
checkouts of one buyer cannot both see a free slot. `precheck` is the same check without the
lock, to refuse early (before the checkout card is shown).
"""

from __future__ import annotations

import zlib
from typing import Any, cast

from tortoise import connections

from shop.blocklist import is_blocked
from shop.errors import ShopError
from shop.models import Order, Tenant
from shop.states import OrderStatus

DEFAULT_MAX_OPEN_ORDERS = 2
MAX_OPEN_ORDERS_LIMIT = 20  # the most a store may allow: every open order holds stock


class BuyerBlocked(ShopError):
    """The buyer is on the store's blocklist. The message does not say so, on purpose."""

    code = "buyer_refused"
    message_key = "buyerlimits.error.refused"


class TooManyOpenOrders(ShopError):
    """The buyer already holds the store's maximum of unpaid orders."""

    code = "too_many_open_orders"
    message_key = "buyerlimits.error.too_many_open"


async def open_orders(tenant_id: int, buyer_id: str, conn: Any = None) -> int:
    """The buyer's unpaid (pending) orders in this store: each one holds stock. A cart's lines
    count as one (one checkout, one PIX: shop.cart_checkout)."""
    query = Order.filter(tenant_id=tenant_id, buyer_discord_id=buyer_id, status=OrderStatus.PENDING)
    if conn is not None:
        query = query.using_db(conn)
    singles = await query.filter(cart_id__isnull=True).count()
    # tortoise types values_list(flat=True) as list[tuple]; it is a list of the values.
    in_carts = query.filter(cart_id__isnull=False).values_list("cart_id", flat=True)
    carts = cast(list[int], await in_carts)
    return singles + len(set(carts))


async def _limit(tenant_id: int, conn: Any = None) -> int:
    query = Tenant.filter(id=tenant_id)
    if conn is not None:
        query = query.using_db(conn)
    # tortoise types values_list(flat=True) as list[tuple]; it is a list of the values.
    values = cast(list[int], await query.values_list("max_open_orders_per_buyer", flat=True))
    limit = values[0] if values else DEFAULT_MAX_OPEN_ORDERS
    return max(1, min(int(limit), MAX_OPEN_ORDERS_LIMIT))


async def _check(tenant_id: int, buyer_id: str, conn: Any) -> None:
    if await is_blocked(tenant_id, buyer_id, using_db=conn):
        raise BuyerBlocked(f"buyer {buyer_id} is blocked in store {tenant_id}")
    limit = await _limit(tenant_id, conn)
    if await open_orders(tenant_id, buyer_id, conn) >= limit:
        raise TooManyOpenOrders(f"buyer {buyer_id} holds {limit} unpaid orders", maximum=limit)


async def precheck(tenant_id: int, buyer_id: str) -> None:
    """Refuse early: `BuyerBlocked` or `TooManyOpenOrders` (checkout checks again, locked)."""
    await _check(tenant_id, buyer_id, None)


async def _lock(conn: Any, tenant_id: int, buyer_id: str) -> None:
    client = conn if conn is not None else connections.get("default")
    if client.capabilities.dialect != "postgres":
        return  # SQLite: BEGIN IMMEDIATE already serialises writers (core.sqlite_backend)
    key = zlib.crc32(buyer_id.encode()) - 2**31  # into int4
    await client.execute_query("SELECT pg_advisory_xact_lock($1, $2)", [tenant_id, key])


async def guard(conn: Any, tenant_id: int, buyer_id: str) -> None:
    """Inside checkout's transaction, before the order is created: lock, then check."""
    await _lock(conn, tenant_id, buyer_id)
    await _check(tenant_id, buyer_id, conn)
