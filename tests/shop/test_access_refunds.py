"""Refunds take back only what the order paid for (issue 16 follow-up), on SQLite and
PostgreSQL against the Discord sandbox through the worker's own REST adapter: a refunded
renewal shortens the access by its period (the role stays), refunding the running period
continues from now with the later paid one, a period already used changes nothing ahead, and
the store's buyer role goes only when the buyer has no delivered order left in the store."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from core.models import AuditLog
from shop.access_revoke import revoke_for_order
from shop.access_stats import tab_counts
from shop.models import AccessGrant, AccessOrder, AccessStatus, Order, Variation
from shop.states import OrderStatus
from tests.shop.test_access import deliver, roles_of, run, world  # noqa: F401 - the fixture

DAY = timedelta(days=1)
MINUTE = timedelta(minutes=1)


async def _links(grant: AccessGrant) -> list[AccessOrder]:
    return await AccessOrder.filter(access_id=grant.id).order_by("id")


async def test_refunded_renewal_not_started_shortens_access_by_its_period_role_stays(world):
    w = world
    first = await deliver(w, w["monthly"])
    paid_ahead = await deliver(w, w["monthly"])
    last = await deliver(w, w["monthly"])
    grant = await AccessGrant.get(order_id=first.id)
    start, end = grant.starts_at, grant.ends_at
    assert end is not None and abs(end - (start + 90 * DAY)) < timedelta(seconds=1)
    now = datetime.now(UTC)
    await run(w, now)
    assert await revoke_for_order(paid_ahead, "refund", now=now) is not None
    assert await revoke_for_order(paid_ahead, "refund", now=now) is None  # replayed: once
    grant = await AccessGrant.get(id=grant.id)
    assert grant.status == AccessStatus.ACTIVE and grant.ends_at == end - 30 * DAY
    one, refunded, three = await _links(grant)
    assert refunded.order_id == paid_ahead.id and refunded.refunded_at is not None
    assert one.refunded_at is None and three.refunded_at is None
    assert (three.order_id, three.period_start) == (last.id, one.period_end)  # shifted back
    assert three.period_end == grant.ends_at
    assert (await run(w, now)).removed == 0
    assert w["vip"] in await roles_of(w)
    assert await AuditLog.filter(action="access.shortened", target_id=str(grant.id)).exists()
    # the reminders follow the new end, and the access ends there
    await run(w, grant.ends_at - 3 * DAY + MINUTE)
    assert "3 dias" in (await w["buyer"].dms())[-1].text()
    report = await run(w, grant.ends_at + timedelta(seconds=1))
    assert report.expired == 1 and w["vip"] not in await roles_of(w)


async def test_refunding_the_running_period_continues_from_now_with_the_later_one(world):
    w = world
    first = await deliver(w, w["monthly"])
    renewal = await deliver(w, w["monthly"])
    grant = await AccessGrant.get(order_id=first.id)
    await run(w, datetime.now(UTC))
    later = datetime.now(UTC) + 10 * DAY
    await revoke_for_order(first, "chargeback", now=later)
    grant = await AccessGrant.get(id=grant.id)
    assert grant.status == AccessStatus.ACTIVE and grant.ends_at == later + 30 * DAY
    assert grant.reminded_3d_at is None and grant.reminded_1d_at is None  # owed again
    await run(w, later)
    assert w["vip"] in await roles_of(w)
    # the MED of the period now running, with nothing paid after it: ends now
    await revoke_for_order(renewal, "med", now=later + DAY)
    grant = await AccessGrant.get(id=grant.id)
    assert grant.status == AccessStatus.REVOKED and grant.ended_reason == "med"
    assert (await run(w, later + DAY)).removed == 1
    assert w["vip"] not in await roles_of(w)


async def test_refunding_a_period_already_used_changes_nothing_ahead(world):
    w = world
    first = await deliver(w, w["monthly"])
    await deliver(w, w["monthly"])
    grant = await AccessGrant.get(order_id=first.id)
    await run(w, datetime.now(UTC))
    assert await revoke_for_order(first, "refund", now=grant.starts_at + 40 * DAY) is None
    after = await AccessGrant.get(id=grant.id)
    assert after.status == AccessStatus.ACTIVE and after.ends_at == grant.ends_at
    assert w["vip"] in await roles_of(w)


async def _plain(w: dict[str, Any]) -> Variation:
    """A key product: no roles, no duration (no access grant at all)."""
    return await Variation.create(
        tenant=w["tenant"], product_id=w["monthly"].product_id, name="Key", price_cents=990
    )


async def _buyer_role(w: dict[str, Any]) -> str:
    """The store's buyer role (Extra), held by the buyer as deliveries give it."""
    role = w["guild"].role("Extra")
    w["tenant"].buyer_role_id = role
    await w["tenant"].save(update_fields=["buyer_role_id"])
    http = w["discord"].bot.http
    await http.add_role(int(w["guild"].id), int(w["buyer"].id), int(role))
    return role


async def _refund(order: Order) -> None:
    """What the payment sync does: the order to `refunded`, then the access engine."""
    await Order.filter(id=order.id).update(status=OrderStatus.REFUNDED)
    await revoke_for_order(order, "refund")


async def test_buyer_role_stays_while_another_delivered_order_remains(world):
    w = world
    role = await _buyer_role(w)
    key = await _plain(w)
    one, two = await deliver(w, key), await deliver(w, key)
    await _refund(one)
    report = await run(w, datetime.now(UTC))
    assert report.claimed == 1 and report.kept == 1 and report.removed == 0
    assert role in await roles_of(w)
    await _refund(two)
    assert (await run(w, datetime.now(UTC))).removed == 1
    assert role not in await roles_of(w)
    rows = await AccessGrant.filter(store_role=True)
    assert all(r.roles_removed_at is not None and r.next_due_at is None for r in rows)
    counts = await tab_counts(w["tenant"].id, datetime.now(UTC))
    assert sum(counts.values()) == 0  # the buyer role is not a subscriber


async def test_buyer_role_kept_for_an_old_delivered_order_without_a_grant(world):
    w = world
    role = await _buyer_role(w)
    await Order.create(  # delivered before access grants existed: no grant, no link
        tenant=w["tenant"],
        product_id=w["monthly"].product_id,
        variation=await _plain(w),
        interaction_id=uuid.uuid4().hex[:20],
        buyer_discord_id=w["buyer"].id,
        quantity=1,
        unit_price_cents=990,
        total_cents=990,
        status=OrderStatus.DELIVERED,
        delivered_at=datetime.now(UTC) - 300 * DAY,
    )
    vip = await deliver(w, w["monthly"])
    await run(w, datetime.now(UTC))
    await _refund(vip)
    report = await run(w, datetime.now(UTC))
    assert report.removed == 1  # the VIP the refunded order gave
    held = await roles_of(w)
    assert w["vip"] not in held and role in held
