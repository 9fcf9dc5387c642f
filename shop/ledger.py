"""Double-entry, append-only ledger in integer centavos.

Every booking is one transaction (`txn_id`) whose legs sum to zero, keyed by an idempotency
key (`sale:<payment>`, `refund:<payment>:<refunded total>`, `reversal:<payment>`,
`withdrawal:<id>`…): booking it twice is a no-op, and the unique (idempotency_key, account)
index enforces that under any concurrency. Nothing is ever updated or deleted; a refund is a
new transaction with the opposite legs.

Accounts: `seller:<tenant>` (what the platform owes a seller), `platform:fees` (our revenue),
`platform:clearing` (money held at Mercado Pago), `platform:payouts` (withdrawals in flight),
`platform:refund_holds` (what seller refunds in flight reserved: `refund_hold:<payment>:
<refunded total>:<nonce>`, given back by `refund_release:…` once the refund is booked).
A seller's balance is the sum of their entries; credits from sales become *available* only at
`available_at` (the hold), debits count at once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from tortoise.functions import Sum

from shop.cents import fee_cents
from shop.models import LedgerEntry

FEES = "platform:fees"
CLEARING = "platform:clearing"
PAYOUTS = "platform:payouts"
HOLDS = "platform:refund_holds"


def seller_account(tenant_id: int) -> str:
    return f"seller:{tenant_id}"


@dataclass(frozen=True)
class Leg:
    account: str
    amount_cents: int
    tenant_id: int | None = None
    available_at: datetime | None = None  # None: at once


@dataclass(frozen=True)
class PartialRefund:
    """One partial-refund booking: `amount_cents` more refunded (of which `fee_cents` is the
    platform fee given back), `refunded_total_cents` refunded in all."""

    refunded_total_cents: int
    amount_cents: int
    fee_cents: int

    @property
    def seller_cents(self) -> int:
        """What this booking took from the seller."""
        return self.amount_cents - self.fee_cents


@dataclass(frozen=True)
class Balance:
    """A seller's balance: `total` = sum of entries; `available` = past the hold."""

    total_cents: int
    available_cents: int

    @property
    def on_hold_cents(self) -> int:
        return self.total_cents - self.available_cents

    @property
    def withdrawable_cents(self) -> int:
        """What a withdrawal may take now (0 while the balance is negative)."""
        return max(0, min(self.available_cents, self.total_cents))


class UnbalancedTransaction(ValueError):
    """Programming error: legs that do not sum to zero."""


async def already_booked(key: str, using_db: Any = None) -> bool:
    return await LedgerEntry.filter(idempotency_key=key).using_db(using_db).exists()


async def post(
    key: str,
    kind: str,
    legs: list[Leg],
    *,
    order_id: int | None = None,
    withdrawal_id: int | None = None,
    memo: str = "",
    using_db: Any = None,
) -> bool:
    """Book one transaction; False (and nothing written) if `key` was booked before."""
    if sum(leg.amount_cents for leg in legs) != 0:
        raise UnbalancedTransaction(f"{key}: legs sum to {sum(x.amount_cents for x in legs)}")
    if await already_booked(key, using_db):
        return False
    txn = uuid.uuid4()
    now = datetime.now(UTC)
    await LedgerEntry.bulk_create(
        [
            LedgerEntry(
                txn_id=txn,
                idempotency_key=key,
                account=leg.account,
                tenant_id=leg.tenant_id,
                amount_cents=leg.amount_cents,
                kind=kind,
                order_id=order_id,
                withdrawal_id=withdrawal_id,
                available_at=leg.available_at or now,
                memo=memo[:200],
            )
            for leg in legs
            if leg.amount_cents != 0 or leg.account.startswith("seller:")
        ],
        using_db=using_db,
    )
    return True


async def book_sale(
    payment_id: str,
    tenant_id: int,
    order_id: int,
    amount_cents: int,
    fee_bps: int,
    hold_days: int,
    using_db: Any = None,
    memo: str | None = None,
) -> bool:
    """Credit the seller with the sale minus the platform fee (held `hold_days`); `memo`
    defaults to the payment (a cart's sale names its lines, shop.payments.payment_bookings)."""
    fee = fee_cents(amount_cents, fee_bps)
    release = datetime.now(UTC) + timedelta(days=hold_days)
    return await post(
        f"sale:{payment_id}",
        "sale",
        [
            Leg(CLEARING, -amount_cents),
            Leg(seller_account(tenant_id), amount_cents - fee, tenant_id, release),
            Leg(FEES, fee),
        ],
        order_id=order_id,
        memo=(memo or f"payment {payment_id}")[:200],
        using_db=using_db,
    )


def refund_key(payment_id: str, refunded_total_cents: int) -> str:
    """Idempotency key of the partial refund that brings a payment to this refunded total."""
    return f"refund:{payment_id}:{refunded_total_cents}"


async def payment_entries(payment_id: str, using_db: Any = None) -> list[LedgerEntry]:
    """Every entry booked for one payment (sale, partial refunds, reversal), oldest first."""
    sale_key, reversal_key = f"sale:{payment_id}", f"reversal:{payment_id}"
    seller = (
        await LedgerEntry.filter(idempotency_key=sale_key, account__startswith="seller:")
        .using_db(using_db)
        .values_list("account", flat=True)
    )
    if not seller:
        return []
    # Every booking has a seller leg (`post` keeps it even at zero), so the partial refunds
    # are found among that seller's entries: the account index bounds the prefix match.
    refund_keys = (
        await LedgerEntry.filter(
            account=seller[0],
            idempotency_key__startswith=f"refund:{payment_id}:",
        )
        .using_db(using_db)
        .values_list("idempotency_key", flat=True)
    )
    return (
        await LedgerEntry.filter(
            idempotency_key__in=[sale_key, *refund_keys, reversal_key],
        )
        .using_db(using_db)
        .order_by("id")
    )


def net_by_account(entries: list[LedgerEntry]) -> dict[str, int]:
    """Sum of `entries` per account, in order of first appearance."""
    net: dict[str, int] = {}
    for e in entries:
        net[e.account] = net.get(e.account, 0) + e.amount_cents
    return net


def _share(total: int, part: int, whole: int) -> int:
    """`total * part / whole` rounded half up, in integers (all non-negative, whole > 0)."""
    return (2 * total * part + whole) // (2 * whole)


def plan_partial_refund(
    payment_id: str, entries: list[LedgerEntry], refunded_total_cents: int
) -> tuple[PartialRefund, LedgerEntry] | None:
    """What `book_partial_refund` would book (and the sale's seller entry), from the payment's
    entries; None when nothing: no sale, reversed already, or this total booked already."""
    sale = [e for e in entries if e.idempotency_key == f"sale:{payment_id}"]
    if not sale or any(e.idempotency_key == f"reversal:{payment_id}" for e in entries):
        return None
    sold = net_by_account(sale)
    amount = -sold.get(CLEARING, 0)
    if not 0 <= refunded_total_cents <= amount:
        raise ValueError(
            f"{payment_id}: refunded total {refunded_total_cents} is not "
            f"within the sale of {amount}"
        )
    refunded = net_by_account([e for e in entries if e.idempotency_key.startswith("refund:")])
    delta = refunded_total_cents - refunded.get(CLEARING, 0)
    if delta <= 0:  # booked already, or older news than what we booked
        return None
    fee = _share(sold.get(FEES, 0), refunded_total_cents, amount) + refunded.get(FEES, 0)
    seller = next(e for e in sale if e.account.startswith("seller:"))
    return PartialRefund(refunded_total_cents, delta, fee), seller


async def book_partial_refund(
    payment_id: str, refunded_total_cents: int, using_db: Any = None
) -> PartialRefund | None:
    """Take the newly refunded part of a sale back: the payment now has `refunded_total_cents`
    refunded in all. Books only the increase over what earlier partial refunds booked; None
    when there is none, no sale, or the sale was reversed already.

    The fee given back is the sale's fee times the refunded share, for the cumulative total
    (rounded half up) minus what was given back before, so repeated partial refunds never
    drift. Callers serialise per payment (the sync holds the payment row lock).
    """
    planned = plan_partial_refund(
        payment_id, await payment_entries(payment_id, using_db), refunded_total_cents
    )
    if planned is None:
        return None
    part, seller = planned
    booked = await post(
        refund_key(payment_id, refunded_total_cents),
        "refund",
        [
            Leg(CLEARING, part.amount_cents),
            Leg(seller.account, -part.seller_cents, seller.tenant_id),
            Leg(FEES, -part.fee_cents),
        ],
        order_id=seller.order_id,
        using_db=using_db,
        memo=f"partial refund of payment {payment_id}, {refunded_total_cents} in all",
    )
    return part if booked else None


async def refund_debit(payment_id: str, refunded_total_cents: int, using_db: Any = None) -> int:
    """What a refund bringing the payment to `refunded_total_cents` refunded in all would take
    from the seller, as the ledger would book it: the partial refund's seller leg, or, for the
    whole sale, the reversal's (what is left of the sale after earlier partial refunds)."""
    entries = await payment_entries(payment_id, using_db)
    sale = net_by_account([e for e in entries if e.idempotency_key == f"sale:{payment_id}"])
    if refunded_total_cents >= -sale.get(CLEARING, 0):
        left = net_by_account(entries)
        return sum(cents for account, cents in left.items() if account.startswith("seller:"))
    planned = plan_partial_refund(payment_id, entries, refunded_total_cents)
    return planned[0].seller_cents if planned else 0


async def book_reversal(payment_id: str, kind: str, using_db: Any = None) -> bool:
    """Reverse what is left of a sale after its partial refunds (refund or chargeback), so
    every account nets to zero for the payment; False if no sale or done already."""
    entries = await payment_entries(payment_id, using_db)
    if not entries:
        return False
    tenants = {e.account: e.tenant_id for e in entries}
    legs = [
        Leg(account, -left, tenants[account]) for account, left in net_by_account(entries).items()
    ]
    return await post(
        f"reversal:{payment_id}",
        kind,
        legs,
        order_id=entries[0].order_id,
        memo=f"{kind} of payment {payment_id}",
        using_db=using_db,
    )


async def _sum(using_db: Any = None, **filters: Any) -> int:
    # tortoise types values_list(flat=True) as list[tuple]; it is a list of the values.
    rows = cast(
        list[int | None],
        await LedgerEntry.filter(**filters)
        .using_db(using_db)
        .annotate(total=Sum("amount_cents"))
        .values_list("total", flat=True),
    )
    return int(rows[0] or 0) if rows else 0


async def balance(tenant_id: int, now: datetime | None = None, using_db: Any = None) -> Balance:
    """The seller's balance: total and available (sale credits past their hold)."""
    account = seller_account(tenant_id)
    moment = now or datetime.now(UTC)
    total = await _sum(using_db, account=account)
    available = await _sum(using_db, account=account, available_at__lte=moment)
    return Balance(total, available)


async def account_total(account: str, using_db: Any = None) -> int:
    """Sum of every entry of one account."""
    return await _sum(using_db, account=account)
