"""Withdrawals (saques): requested → processing → completed | rejected | failed.

Requesting debits the seller at once (so two requests cannot spend the same money); the
tenant row is locked for the check-and-debit (`SELECT … FOR UPDATE` on PostgreSQL; SQLite
serialises write transactions). Rejection books the money back; completion moves it from
`platform:payouts` out of `platform:clearing`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from tortoise.transactions import in_transaction

from core import audit
from core.i18n import format_brl
from shop import ledger
from shop.errors import (
    InsufficientBalance,
    InvalidAmount,
    NegativeBalance,
    PayoutInFlight,
    WithdrawalNotFound,
)
from shop.models import NoticeKind, Payout, Tenant, Withdrawal
from shop.notify.seller import notify_seller
from shop.pix_keys import validate_pix_key
from shop.states import WITHDRAWAL_TRANSITIONS, PayoutStatus, WithdrawalStatus, check

W = WithdrawalStatus
# Run in the status change's transaction (`shop.payouts` writes its payout row there).
Then = Callable[[Withdrawal, Any], Awaitable[None]]
MAX_WITHDRAWAL_CENTS = 100_000_000_00  # R$ 100 million: a typo guard, not a policy


def _snapshot(w: Withdrawal) -> dict[str, Any]:
    return {"status": str(w.status), "amount_cents": w.amount_cents, "acted_by": w.acted_by}


async def request_withdrawal(
    tenant_id: int, amount_cents: int, pix_key: str, actor: str, pix_key_type: str | None = None
) -> Withdrawal:
    """Debit `amount_cents` from the seller's available balance and queue a PIX payout.

    Raises `InvalidAmount`, `InvalidPixKey`, or `InsufficientBalance` (with what is
    available, in the message) — in which case nothing is written.
    """
    if not isinstance(amount_cents, int) or not 0 < amount_cents <= MAX_WITHDRAWAL_CENTS:
        raise InvalidAmount(f"bad withdrawal amount {amount_cents!r}")
    key_type, key = validate_pix_key(pix_key, pix_key_type)
    async with in_transaction() as conn:
        tenant = await Tenant.filter(id=tenant_id).using_db(conn).select_for_update().first()
        if tenant is None:
            raise InvalidAmount(f"tenant {tenant_id} does not exist")
        bal = await ledger.balance(tenant_id, using_db=conn)
        if bal.total_cents < 0:
            raise NegativeBalance(
                f"balance is {bal.total_cents}", balance=format_brl(bal.total_cents)
            )
        if amount_cents > bal.withdrawable_cents:
            raise InsufficientBalance(
                f"requested {amount_cents}, withdrawable {bal.withdrawable_cents}",
                requested=format_brl(amount_cents),
                available=format_brl(bal.withdrawable_cents),
            )
        w = await Withdrawal.create(
            tenant_id=tenant_id,
            amount_cents=amount_cents,
            pix_key_type=str(key_type),
            pix_key=key,
            using_db=conn,
        )
        await ledger.post(
            f"withdrawal:{w.id}",
            "withdrawal",
            [
                ledger.Leg(ledger.seller_account(tenant_id), -amount_cents, tenant_id),
                ledger.Leg(ledger.PAYOUTS, amount_cents),
            ],
            withdrawal_id=w.id,
            memo=f"withdrawal {w.id}",
            using_db=conn,
        )
        await audit.record(
            actor,
            "withdrawal.requested",
            "withdrawal",
            w.id,
            tenant_id=tenant_id,
            before=None,
            after={**_snapshot(w), "pix_key_type": str(key_type)},
            using_db=conn,
        )
    return w


async def _move(
    withdrawal_id: int,
    new: WithdrawalStatus,
    actor: str,
    *,
    reason: str | None = None,
    transfer_id: str | None = None,
    then: Then | None = None,
) -> Withdrawal:
    async with in_transaction() as conn:
        w = await Withdrawal.filter(id=withdrawal_id).using_db(conn).select_for_update().first()
        if w is None:
            raise WithdrawalNotFound(f"withdrawal {withdrawal_id} does not exist")
        if w.status == new:
            return w  # idempotent: a double click changes nothing
        before = _snapshot(w)
        check(WITHDRAWAL_TRANSITIONS, "withdrawal", W(w.status), new)
        if then is None and await _payout_in_flight(w.id, conn):
            # a person completing or rejecting it now could pay the seller twice
            raise PayoutInFlight(f"withdrawal {w.id}: its automatic payout is under way")
        now = datetime.now(UTC)
        w.status = new
        w.acted_by = actor
        setattr(w, f"{new}_at", now)
        if reason is not None:
            w.reason = reason
        if transfer_id is not None:
            w.transfer_id = transfer_id
        await w.save(using_db=conn)
        await _book(w, new, conn)
        if then is not None:
            await then(w, conn)
        await audit.record(
            actor,
            f"withdrawal.{new}",
            "withdrawal",
            w.id,
            tenant_id=w.tenant_id,
            before=before,
            after={**_snapshot(w), "reason": reason, "transfer_id": transfer_id},
            using_db=conn,
        )
        await notify_seller(  # the owner's DM (shop.notify), owed in this transaction
            w.tenant_id,
            NoticeKind.WITHDRAWAL,
            {
                "withdrawal_id": w.id,
                "amount_cents": w.amount_cents,
                "status": str(new),
                "reason": reason or "",
            },
            dedupe=f"withdrawal:{w.id}:{new}",
            using_db=conn,
        )
    return w


async def _payout_in_flight(withdrawal_id: int, conn: Any) -> bool:
    active = (PayoutStatus.QUEUED, PayoutStatus.SENT)
    return await (
        Payout.filter(withdrawal_id=withdrawal_id, status__in=active).using_db(conn).exists()
    )


async def _book(w: Withdrawal, new: WithdrawalStatus, conn: Any) -> None:
    if new in (W.REJECTED, W.FAILED):  # the money goes back to the seller, available at once
        await ledger.post(
            f"withdrawal_return:{w.id}",
            "withdrawal_return",
            [
                ledger.Leg(ledger.PAYOUTS, -w.amount_cents),
                ledger.Leg(ledger.seller_account(w.tenant_id), w.amount_cents, w.tenant_id),
            ],
            withdrawal_id=w.id,
            memo=f"withdrawal {w.id} {new}",
            using_db=conn,
        )
    elif new is W.COMPLETED:  # the PIX left our Mercado Pago account
        await ledger.post(
            f"withdrawal_paid:{w.id}",
            "withdrawal_paid",
            [
                ledger.Leg(ledger.PAYOUTS, -w.amount_cents),
                ledger.Leg(ledger.CLEARING, w.amount_cents),
            ],
            withdrawal_id=w.id,
            memo=f"withdrawal {w.id} paid",
            using_db=conn,
        )


async def approve_withdrawal(
    withdrawal_id: int, actor: str, then: Then | None = None
) -> Withdrawal:
    """requested → processing (an operator, or `shop.payouts`, is sending the PIX)."""
    return await _move(withdrawal_id, W.PROCESSING, actor, then=then)


async def complete_withdrawal(
    withdrawal_id: int, actor: str, transfer_id: str | None = None, then: Then | None = None
) -> Withdrawal:
    """processing → completed (the PIX was sent; `transfer_id` is the bank's id)."""
    return await _move(withdrawal_id, W.COMPLETED, actor, transfer_id=transfer_id, then=then)


async def fail_withdrawal(
    withdrawal_id: int, actor: str, reason: str, then: Then | None = None
) -> Withdrawal:
    """processing → failed (the automatic payout was refused); the amount returns to the
    seller's balance, as on a rejection."""
    return await _move(withdrawal_id, W.FAILED, actor, reason=reason, then=then)


async def reject_withdrawal(withdrawal_id: int, actor: str, reason: str) -> Withdrawal:
    """requested/processing → rejected; the amount returns to the seller's balance."""
    return await _move(withdrawal_id, W.REJECTED, actor, reason=reason or "rejected")
