"""Double-entry, append-only ledger in integer centavos.

Every booking is one transaction (`txn_id`) whose legs sum to zero, keyed by an idempotency
key (`sale:<payment>`, `reversal:<payment>`, `withdrawal:<id>`…): booking it twice is a no-op,
and the unique (idempotency_key, account) index enforces that under any concurrency. Nothing
is ever updated or deleted; a refund is a new transaction with the opposite legs.

Accounts: `seller:<tenant>` (what the platform owes a seller), `platform:fees` (our revenue),
`platform:clearing` (money held at Mercado Pago), `platform:payouts` (withdrawals in flight).
A seller's balance is the sum of their entries; credits from sales become *available* only at
`available_at` (the hold), debits count at once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.functions import Sum

from shop.models import LedgerEntry
from shop.money import fee_cents

FEES = "platform:fees"
CLEARING = "platform:clearing"
PAYOUTS = "platform:payouts"


def seller_account(tenant_id: int) -> str:
    return f"seller:{tenant_id}"


@dataclass(frozen=True)
class Leg:
    account: str
    amount_cents: int
    tenant_id: int | None = None
    available_at: datetime | None = None  # None: at once


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


async def post(key: str, kind: str, legs: list[Leg], *, order_id: int | None = None,
               withdrawal_id: int | None = None, memo: str = "",
               using_db: Any = None) -> bool:
    """Book one transaction; False (and nothing written) if `key` was booked before."""
    if sum(leg.amount_cents for leg in legs) != 0:
        raise UnbalancedTransaction(f"{key}: legs sum to {sum(x.amount_cents for x in legs)}")
    if await already_booked(key, using_db):
        return False
    txn = uuid.uuid4()
    now = datetime.now(UTC)
    await LedgerEntry.bulk_create([
        LedgerEntry(txn_id=txn, idempotency_key=key, account=leg.account,
                    tenant_id=leg.tenant_id, amount_cents=leg.amount_cents, kind=kind,
                    order_id=order_id, withdrawal_id=withdrawal_id,
                    available_at=leg.available_at or now, memo=memo[:200])
        for leg in legs if leg.amount_cents != 0 or leg.account.startswith("seller:")
    ], using_db=using_db)
    return True


async def book_sale(payment_id: str, tenant_id: int, order_id: int, amount_cents: int,
                    fee_bps: int, hold_days: int, using_db: Any = None) -> bool:
    """Credit the seller with the sale minus the platform fee (held `hold_days`)."""
    fee = fee_cents(amount_cents, fee_bps)
    release = datetime.now(UTC) + timedelta(days=hold_days)
    return await post(f"sale:{payment_id}", "sale", [
        Leg(CLEARING, -amount_cents),
        Leg(seller_account(tenant_id), amount_cents - fee, tenant_id, release),
        Leg(FEES, fee),
    ], order_id=order_id, memo=f"payment {payment_id}", using_db=using_db)


async def book_reversal(payment_id: str, kind: str, using_db: Any = None) -> bool:
    """Reverse a booked sale exactly (refund or chargeback); False if none or done already."""
    sale = await LedgerEntry.filter(idempotency_key=f"sale:{payment_id}").using_db(using_db)
    if not sale:
        return False
    legs = [Leg(e.account, -e.amount_cents, e.tenant_id) for e in sale]
    return await post(f"reversal:{payment_id}", kind, legs, order_id=sale[0].order_id,
                      memo=f"{kind} of payment {payment_id}", using_db=using_db)


async def _sum(using_db: Any = None, **filters: Any) -> int:
    rows = await LedgerEntry.filter(**filters).using_db(using_db) \
        .annotate(total=Sum("amount_cents")).values_list("total", flat=True)
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
