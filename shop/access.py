"""Roles per product and timed access (issue 16): what an order grants, and its revocation.

The engine's contract (the portal's staff actions and the product kinds rely on it):

* Every role a delivery grants (the variation's `role_ids`; the store-wide buyer role stays
  outside, as before) is recorded in an `AccessGrant`, permanent ones (`ends_at` NULL) too,
  so a revocation knows what an order granted. `grant_for_order` runs in the transaction that
  moves the order to `delivered` (`shop.orders.transition`, whichever path delivers it);
  `shop.access_revoke.revoke_for_order` in the one that moves it to `refunded`
  (`shop.payments.sync`: refund, chargeback, MED), taking back only what that order paid for.
* A renewal is an order: delivering another order of the same buyer and variation extends
  the ACTIVE grant **from its current end, not from today**, clears the period's reminders,
  counts a renewal and links the order (`AccessOrder`, unique per order: a replayed delivery
  extends nothing).
* Nobody but the store's worker talks to Discord about a grant. A writer that changes what
  a grant should look like (a renewal, a revocation, staff's grant/extend/revoke) updates the
  row and makes it due now with its claim cleared (`due_now`); the worker (`shop.access_run`)
  claims due grants of its store with a conditional UPDATE and does the Discord side. A
  cleared claim makes the worker's later write-back miss, so it never overwrites the change.
* The reconciler's `shop.access_relay.AccessRelay` wakes the worker through its delivery
  stream when a grant is due: due times live in the database, so restarts lose nothing.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.expressions import F
from tortoise.transactions import in_transaction

from core import audit
from shop.access_plan import reminders_already_past
from shop.errors import ShopError
from shop.models import AccessGrant, AccessOrder, AccessStatus, Order, Tenant, Variation

_SNOWFLAKE = re.compile(r"^[0-9]{1,20}$")
MAX_ROLES = 10  # roles one variation may grant (the portal checks it when saving too)


class AccessNotRenewable(ShopError):
    """ "Renovar" on a grant that is not the clicker's, or whose product is gone."""

    code = "access_not_renewable"
    message_key = "shop.error.access_not_renewable"


def clean_role_ids(raw: object) -> list[str]:
    """The role snowflakes of a variation's `role_ids` (strings of digits, no duplicates)."""
    if not isinstance(raw, list):
        return []
    out: list[str] = []
    for value in raw[:MAX_ROLES]:
        text = str(value)
        if _SNOWFLAKE.match(text) and text not in out:
            out.append(text)
    return out


def due_now(now: datetime) -> dict[str, Any]:
    """The fields a writer sets (with its own changes) to hand a grant to its worker now."""
    return {"next_due_at": now, "claim": None, "attempts": 0, "updated_at": now}


async def grant_for_order(
    order: Order, *, using_db: Any = None, now: datetime | None = None
) -> AccessGrant | None:
    """Record the access a delivered order gives (create, or extend the buyer's ACTIVE grant
    of the same variation from its current end); None when the variation grants nothing.
    Idempotent per order."""
    if using_db is not None:
        return await _grant(order, using_db, now or datetime.now(UTC))
    async with in_transaction() as conn:
        return await _grant(order, conn, now or datetime.now(UTC))


async def _grant(order: Order, conn: Any, now: datetime) -> AccessGrant | None:
    variation = await Variation.filter(id=order.variation_id).using_db(conn).first()
    if variation is None:
        return None
    roles = clean_role_ids(variation.role_ids)
    days = variation.duration_days
    period = timedelta(days=days * order.quantity) if days else None  # 2 units: twice as long
    if not roles and period is None:  # most products: one query, nothing to record
        return None
    # two orders of one buyer delivered at once must not both create a grant: the first to
    # lock the variation creates it, the second then extends it (SQLite serialises anyway)
    await Variation.filter(id=variation.id).using_db(conn).select_for_update().first()
    linked = await AccessOrder.filter(order_id=order.id).using_db(conn).first()
    if linked is not None:  # a replayed delivery: granted once already
        return await AccessGrant.filter(id=linked.access_id).using_db(conn).first()
    grant = await (
        AccessGrant.filter(
            tenant_id=order.tenant_id,
            buyer_discord_id=order.buyer_discord_id,
            variation_id=variation.id,
            status=AccessStatus.ACTIVE,
        )
        .using_db(conn)
        .select_for_update()
        .order_by("id")
        .first()
    )
    if grant is None:
        grant = await _create(order, roles, period, conn, now)
        start, end, renewal = now, grant.ends_at, False
    else:
        start, end = await _extend(grant, roles, period, conn, now)
        renewal = True
    await AccessOrder.create(
        access_id=grant.id,
        order_id=order.id,
        period_start=start,
        period_end=end,
        renewal=renewal,
        using_db=conn,
    )
    await audit.record(
        f"order:{order.id}",
        "access.renewed" if renewal else "access.granted",
        "access",
        grant.id,
        tenant_id=order.tenant_id,
        after={
            "order_id": order.id,
            "ends_at": end.isoformat() if end else None,
            "role_ids": list(grant.role_ids),
        },
        using_db=conn,
    )
    return grant


async def _create(
    order: Order, roles: list[str], period: timedelta | None, conn: Any, now: datetime
) -> AccessGrant:
    tenant = await Tenant.filter(id=order.tenant_id).using_db(conn).first()
    ends_at = now + period if period else None
    skip_3d, skip_1d = reminders_already_past(ends_at, now)
    return await AccessGrant.create(
        tenant_id=order.tenant_id,
        variation_id=order.variation_id,
        order_id=order.id,
        buyer_discord_id=order.buyer_discord_id,
        # the store's guild, never the one the order names: the roles exist only there
        guild_id=(tenant.guild_id if tenant else None) or "",
        role_ids=roles,
        status=AccessStatus.ACTIVE,
        starts_at=now,
        ends_at=ends_at,
        reminded_3d_at=now if skip_3d else None,
        reminded_1d_at=now if skip_1d else None,
        next_due_at=now,  # roles owed: the worker adds them
        using_db=conn,
    )


async def _extend(
    grant: AccessGrant, roles: list[str], period: timedelta | None, conn: Any, now: datetime
) -> tuple[datetime, datetime | None]:
    """Extend an ACTIVE grant by `period` from its current end (a permanent purchase, or a
    permanent grant, stays permanent); returns the period the order paid for."""
    start = max(grant.ends_at, now) if grant.ends_at is not None else now
    end = start + period if (period is not None and grant.ends_at is not None) else None
    skip_3d, skip_1d = reminders_already_past(end, now)
    changes: dict[str, Any] = due_now(now) | {
        "ends_at": end,
        "reminded_3d_at": now if skip_3d else None,
        "reminded_1d_at": now if skip_1d else None,
        "renewals": F("renewals") + 1,
    }
    added = [r for r in roles if r not in grant.role_ids]
    if added:
        changes["role_ids"] = [*grant.role_ids, *added]
        changes["roles_applied_at"] = None  # the new roles are owed
    await AccessGrant.filter(id=grant.id).using_db(conn).update(**changes)
    await grant.refresh_from_db(using_db=conn)
    return start, end
