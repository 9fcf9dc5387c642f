"""Refund holds: what a seller refund in flight reserves of the seller's balance, in the ledger.

`hold_refund` books seller -debit / `platform:refund_holds` +debit (`refund_hold:<payment>:
<refunded total>:<nonce>`) under the tenant lock before the request leaves; `release_refund_holds`
gives it back (`refund_release:…`) once the refund is booked, refused or found stale.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from shop.ledger import HOLDS, Leg, post, seller_account
from shop.models import LedgerEntry


@dataclass(frozen=True)
class RefundHold:
    """An outstanding reservation of `cents` of a seller's balance for a refund in flight."""

    key: str
    refunded_total_cents: int
    cents: int
    created_at: datetime
    order_id: int | None = None


async def hold_refund(
    payment_id: str,
    refunded_total_cents: int,
    tenant_id: int,
    cents: int,
    order_id: int | None = None,
    using_db: Any = None,
) -> str:
    """Reserve `cents` of the seller's balance (effective at once) for a refund bringing the
    payment to `refunded_total_cents`; the caller holds the tenant lock. Returns the key."""
    key = f"refund_hold:{payment_id}:{refunded_total_cents}:{uuid.uuid4().hex[:12]}"
    await post(
        key,
        "refund_hold",
        [
            Leg(seller_account(tenant_id), -cents, tenant_id),
            Leg(HOLDS, cents),
        ],
        order_id=order_id,
        memo=f"refund of payment {payment_id} in flight",
        using_db=using_db,
    )
    return key


async def refund_holds(payment_id: str, tenant_id: int, using_db: Any = None) -> list[RefundHold]:
    """The payment's holds not released yet, oldest first."""
    rows = (
        await LedgerEntry.filter(
            account=seller_account(tenant_id),
            idempotency_key__startswith=f"refund_hold:{payment_id}:",
        )
        .using_db(using_db)
        .order_by("id")
    )
    # tortoise types values_list(flat=True) as list[tuple]; it is a list of the values.
    released = set(
        cast(
            list[str],
            await LedgerEntry.filter(
                account=seller_account(tenant_id),
                idempotency_key__startswith=f"refund_release:{payment_id}:",
            )
            .using_db(using_db)
            .values_list("idempotency_key", flat=True),
        )
    )
    return [
        RefundHold(
            e.idempotency_key,
            int(e.idempotency_key.split(":")[2]),
            -e.amount_cents,
            e.created_at,
            e.order_id,
        )
        for e in rows
        if "refund_release:" + e.idempotency_key.split(":", 1)[1] not in released
    ]


async def release_refund_holds(
    payment_id: str,
    tenant_id: int,
    *,
    covered_total_cents: int | None = None,
    created_before: datetime | None = None,
    only_key: str | None = None,
    using_db: Any = None,
) -> int:
    """Give back the holds that a booked refund now covers (target ≤ `covered_total_cents`),
    that are older than `created_before`, or the one `only_key`; callers hold the payment row
    lock. Returns how many were released."""
    released = 0
    for hold in await refund_holds(payment_id, tenant_id, using_db):
        if not (
            (covered_total_cents is not None and hold.refunded_total_cents <= covered_total_cents)
            or (created_before is not None and hold.created_at < created_before)
            or hold.key == only_key
        ):
            continue
        released += await post(
            "refund_release:" + hold.key.split(":", 1)[1],
            "refund_release",
            [
                Leg(HOLDS, -hold.cents),
                Leg(seller_account(tenant_id), hold.cents, tenant_id),
            ],
            order_id=hold.order_id,
            memo=f"refund of payment {payment_id} settled",
            using_db=using_db,
        )
    return released
