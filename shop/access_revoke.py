"""What a refund, a chargeback or a MED reversal takes back from access (issue 16).

The rules (docs/storefront.md, "Refunds take back only what the order paid for"):

* Each order that started or extended an access paid for one period (`AccessOrder`). A
  refunded order loses the part of its period not used yet: all of it when the period has
  not started (a renewal paid in advance), the rest of it when it is running, nothing when it
  is over. The grant's end moves back by that much and the later periods shift back with it,
  so the buyer keeps exactly the days the other non-refunded orders paid for, counted from
  now (and days staff added by hand). When nothing is left, the access ends now: REVOKED and
  its roles removed (except a role another active access holds, `shop.access_run`).
* A permanent access stays while another non-refunded order of it is permanent; else it
  keeps the latest end the other orders paid for, or ends now.
* The store-wide buyer role (`Tenant.buyer_role_id`): refunding a delivered order owes a
  look at it, a `store_role` grant row (REVOKED, due now). The store's worker removes the
  role only if the buyer has no delivered order left in the store, decided when it runs
  (`still_a_buyer`), so two refunds committed at once both count and older orders made
  before grants existed count too.

Every write clears the grant's claim and makes it due now (`shop.access.due_now`): the
worker re-plans reminders and expiry or removes the roles, and a stale worker's writes miss.
The link keeps its period as history with `refunded_at` set.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.transactions import in_transaction

from core import audit
from shop.access import due_now
from shop.access_plan import reminder_stamps
from shop.models import AccessGrant, AccessOrder, AccessStatus, Order, Tenant
from shop.states import OrderStatus

REVOKE_REASONS = frozenset({"refund", "chargeback", "med"})
_NOTHING = timedelta(0)


async def revoke_for_order(
    order: Order, reason: str, *, using_db: Any = None, now: datetime | None = None
) -> AccessGrant | None:
    """Take back what `order` paid for (refund, chargeback or MED; run in the transaction
    that moves it to `refunded`) and owe the buyer-role check. Returns the access it changed
    (shortened or revoked), None when nothing changed. Idempotent per order."""
    if reason not in REVOKE_REASONS:
        raise ValueError(f"unknown revoke reason {reason!r}")
    now = now or datetime.now(UTC)
    if using_db is not None:
        return await _revoke(order, reason, using_db, now)
    async with in_transaction() as conn:
        return await _revoke(order, reason, conn, now)


async def _revoke(order: Order, reason: str, conn: Any, now: datetime) -> AccessGrant | None:
    grant = await _take_back(order, reason, conn, now)
    if order.delivered_at is not None:  # only a delivered order gave the buyer role
        await _owe_store_role_check(order, reason, conn, now)
    return grant


def unused(link: AccessOrder, now: datetime) -> timedelta:
    """The part of a link's period still ahead of `now` (zero for a permanent one)."""
    if link.period_end is None:
        return _NOTHING
    return max(_NOTHING, link.period_end - max(link.period_start, now))


async def _take_back(order: Order, reason: str, conn: Any, now: datetime) -> AccessGrant | None:
    link = await AccessOrder.filter(order_id=order.id).using_db(conn).first()
    if link is None:
        return None
    grant = await AccessGrant.filter(id=link.access_id).using_db(conn).select_for_update().first()
    if grant is None or link.refunded_at is not None:
        return None  # refunded once already: nothing more to take
    await AccessOrder.filter(id=link.id).using_db(conn).update(refunded_at=now)
    if grant.status != AccessStatus.ACTIVE:
        if grant.status != AccessStatus.ENDED:
            return None  # revoked already
        await _end(grant, order, reason, conn, now)
        return grant
    others = (
        await AccessOrder.filter(access_id=grant.id, refunded_at__isnull=True)
        .exclude(id=link.id)
        .using_db(conn)
    )
    if grant.ends_at is None:
        changed = await _take_back_permanent(grant, link, others, order, reason, conn, now)
        return grant if changed else None
    cut = unused(link, now)
    if cut == _NOTHING:  # its period is over: the buyer used it, the end stays
        return None
    end = grant.ends_at - cut
    if end <= now:  # nothing else paid for: ends now
        await _end(grant, order, reason, conn, now)
        return grant
    assert link.period_end is not None  # a timed link: `unused` was not zero
    for later in others:  # the periods after the refunded one move back by its unused part
        if later.period_end is not None and later.period_start >= link.period_end:
            await (
                AccessOrder.filter(id=later.id)
                .using_db(conn)
                .update(period_start=later.period_start - cut, period_end=later.period_end - cut)
            )
    await _shorten(grant, end, order, reason, conn, now)
    return grant


async def _take_back_permanent(
    grant: AccessGrant,
    link: AccessOrder,
    others: list[AccessOrder],
    order: Order,
    reason: str,
    conn: Any,
    now: datetime,
) -> bool:
    if link.period_end is not None or any(o.period_end is None for o in others):
        return False  # "for good" is still paid for by another order
    ends = [o.period_end for o in others if o.period_end is not None and o.period_end > now]
    if ends:
        await _shorten(grant, max(ends), order, reason, conn, now)
    else:
        await _end(grant, order, reason, conn, now)
    return True


async def _shorten(
    grant: AccessGrant, end: datetime, order: Order, reason: str, conn: Any, now: datetime
) -> None:
    changes = due_now(now) | {"ends_at": end} | reminder_stamps(end, now)
    before = {"ends_at": grant.ends_at.isoformat() if grant.ends_at else None}
    after = {"ends_at": end.isoformat()}
    await _apply(grant, changes, "access.shortened", before, after, order, reason, conn)


async def _end(grant: AccessGrant, order: Order, reason: str, conn: Any, now: datetime) -> None:
    """REVOKED and due now, so the worker removes its roles (nothing owed in Discord when an
    ended access had them removed already)."""
    changes = due_now(now) | {"status": AccessStatus.REVOKED, "ended_reason": reason}
    if grant.status == AccessStatus.ENDED and grant.roles_removed_at is not None:
        changes["next_due_at"] = None
    before, after = {"status": str(grant.status)}, {"status": str(AccessStatus.REVOKED)}
    await _apply(grant, changes, "access.revoked", before, after, order, reason, conn)


async def _apply(
    grant: AccessGrant,
    changes: dict[str, Any],
    action: str,
    before: dict[str, Any],
    after: dict[str, Any],
    order: Order,
    reason: str,
    conn: Any,
) -> None:
    """Write `changes` to the grant and audit them under the refunded order's name."""
    await AccessGrant.filter(id=grant.id).using_db(conn).update(**changes)
    await audit.record(
        f"order:{order.id}",
        action,
        "access",
        grant.id,
        tenant_id=grant.tenant_id,
        before=before,
        after=after | {"reason": reason, "order_id": order.id},
        using_db=conn,
    )
    await grant.refresh_from_db(using_db=conn)


async def _owe_store_role_check(order: Order, reason: str, conn: Any, now: datetime) -> None:
    """One pending `store_role` row per buyer and store, made due now by every refund."""
    tenant = await Tenant.filter(id=order.tenant_id).using_db(conn).first()
    if tenant is None or not tenant.buyer_role_id or not tenant.guild_id:
        return
    values = due_now(now) | {
        "role_ids": [tenant.buyer_role_id],
        "guild_id": tenant.guild_id,
        "ended_reason": reason,  # `order_id` stays NULL: the row is no order's access
    }
    pending = await (
        AccessGrant.filter(
            tenant_id=order.tenant_id,
            buyer_discord_id=order.buyer_discord_id,
            store_role=True,
            roles_removed_at__isnull=True,
        )
        .using_db(conn)
        .select_for_update()
        .first()
    )
    if pending is not None:
        await AccessGrant.filter(id=pending.id).using_db(conn).update(**values)
        return
    await AccessGrant.create(
        tenant_id=order.tenant_id,
        buyer_discord_id=order.buyer_discord_id,
        store_role=True,
        status=AccessStatus.REVOKED,
        starts_at=now,
        using_db=conn,
        **values,
    )


def change_note(grant: AccessGrant) -> str:
    """The line a payment sync's result gives a changed access."""
    verb = "revoked" if grant.status == AccessStatus.REVOKED else "shortened"
    return f"access {grant.id} {verb}"


async def still_a_buyer(grant: AccessGrant) -> bool:
    """True while the grant's buyer has a delivered (so not refunded) order in its store: the
    store's buyer role stays."""
    return await Order.filter(
        tenant_id=grant.tenant_id,
        buyer_discord_id=grant.buyer_discord_id,
        status=OrderStatus.DELIVERED,
    ).exists()
