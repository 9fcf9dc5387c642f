"""Whether a seller may refund: a pure decision over the balance and what the refund would take.

Mercado Pago pays refunds from the platform's account, which holds every seller's money. A
seller's refund is allowed only while their own balance (available + on hold) covers the debit
the ledger would book for it; otherwise the platform would pay for money already withdrawn.
Operators refund without this check (`shop.payments.refunds.operator_refund`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RefundDecision:
    """`allowed`, or refused with `shortfall_cents` missing from the balance."""

    balance_cents: int
    debit_cents: int

    @property
    def shortfall_cents(self) -> int:
        if self.debit_cents <= 0:
            return 0
        return max(0, self.debit_cents - self.balance_cents)

    @property
    def allowed(self) -> bool:
        return self.shortfall_cents == 0


def decide_seller_refund(balance_cents: int, debit_cents: int) -> RefundDecision:
    """May a seller whose balance (available + on hold) is `balance_cents` make a refund that
    takes `debit_cents` from it? A refund that takes nothing is always allowed."""
    return RefundDecision(balance_cents, max(0, debit_cents))
