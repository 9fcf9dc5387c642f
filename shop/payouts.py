"""Automatic PIX payouts of approved withdrawals (issue 20): never paid twice.

With `PAYOUT_MODE=automatic`, approving a withdrawal (`approve`) writes a `Payout` row in the
approval's transaction: the intent to pay, with an idempotency key of its own, exists before
any call. The sender (`run_once`, in the reconciler) claims due rows like the notice sender
(`shop.notify.claims.claim_due`: one conditional UPDATE, so two reconcilers never take the
same row) and moves each on:
- not answered yet (never sent, or the answer was lost: timeout, 5xx, dropped connection) →
  sent again with the *same* key; Mercado Pago answers a repeated key with the transfer it
  already made, so a lost answer is looked up, never paid twice;
- known at the provider but not final → polled by id until it is;
- paid → the withdrawal is completed with the PIX end-to-end id as proof;
- refused → the withdrawal fails with the provider's reason and the money goes back to the
  seller's balance (the rejection's booking); the seller is told (`shop.withdrawals`).
While a payout is queued or sent, nobody can complete or reject its withdrawal by hand.
A failed payout is retried (or paid by hand) as a new withdrawal: `retry_payout`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from core import audit
from core.errors import IllegalTransition
from shop.errors import (
    InvalidStateChange,
    PaymentProviderError,
    PaymentProviderUnavailable,
    ShopError,
    WithdrawalNotFound,
)
from shop.models import Payout, Withdrawal
from shop.notify.claims import claim_due
from shop.payments.payout_gateway import (
    PayoutGateway,
    PayoutOutcome,
    PayoutRequest,
    ProviderPayout,
)
from shop.states import PayoutStatus, WithdrawalStatus
from shop.withdrawals import (
    approve_withdrawal,
    complete_withdrawal,
    fail_withdrawal,
    request_withdrawal,
)

log = logging.getLogger(__name__)
ACTOR = "system:payouts"
BATCH = 20
CLAIM_S = 120.0  # a sender that dies gives its rows back after this
POLL_S = 15.0  # a transfer pending at the provider is asked about again after this
MAX_BACKOFF_S = 600.0
# A payout whose answer is still unknown after this is no longer sent again: Mercado Pago does
# not document how long it keeps an idempotency key, so an operator checks its panel.
RESEND_WINDOW = timedelta(hours=12)
REASON_MAX = 300


@dataclass
class PayoutReport:
    paid: int = 0
    failed: int = 0
    pending: int = 0
    errors: list[str] = field(default_factory=list)


async def queue_payout(w: Withdrawal, conn: Any) -> None:
    """The intent to pay `w`, written in the transaction that approves it."""
    payout = await Payout.create(
        withdrawal_id=w.id,
        idempotency_key=uuid.uuid4().hex,
        due_at=datetime.now(UTC),
        using_db=conn,
    )
    await audit.record(
        w.acted_by or ACTOR,
        "payout.queued",
        "withdrawal",
        w.id,
        tenant_id=w.tenant_id,
        after={"payout_id": payout.id, "amount_cents": w.amount_cents},
        using_db=conn,
    )


async def approve(withdrawal_id: int, actor: str, *, automatic: bool) -> Withdrawal:
    """requested → processing; with `automatic`, the platform sends the PIX itself."""
    return await approve_withdrawal(withdrawal_id, actor, then=queue_payout if automatic else None)


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(POLL_S * 2 ** max(attempts - 1, 0), MAX_BACKOFF_S))


async def _save(payout: Payout, **values: Any) -> None:
    for name, value in values.items():
        setattr(payout, name, value)
    await payout.save(update_fields=[*values, "updated_at"])


def _marker(payout: Payout, status: PayoutStatus, remote: ProviderPayout) -> Any:
    """The `then` of the withdrawal's move: the payout settles in the same transaction."""

    async def mark(_w: Withdrawal, conn: Any) -> None:
        payout.status, payout.due_at, payout.claim = status, None, None
        payout.e2e_id = remote.e2e_id
        await payout.save(using_db=conn)

    return mark


async def _apply(payout: Payout, w: Withdrawal, remote: ProviderPayout, now: datetime) -> str:
    """Record the provider's answer and settle the withdrawal when it is final."""
    payout.provider_id = remote.id
    payout.provider_status = remote.status[:32]
    payout.provider_detail = remote.status_detail[:64]
    if remote.amount_cents is not None and remote.amount_cents != w.amount_cents:
        await payout.save()
        return await _stuck(
            payout,
            f"the provider reports {remote.amount_cents} centavos, not {w.amount_cents}: "
            f"check the transfer {remote.id}",
        )
    if remote.outcome is PayoutOutcome.PAID:
        proof = remote.e2e_id or f"mp:{remote.id}"
        await complete_withdrawal(
            w.id, ACTOR, proof, then=_marker(payout, PayoutStatus.PAID, remote)
        )
        return "paid"
    if remote.outcome is PayoutOutcome.FAILED:
        reason = f"Mercado Pago: {remote.status}/{remote.status_detail or '-'}"
        await fail_withdrawal(
            w.id, ACTOR, reason[:REASON_MAX], then=_marker(payout, PayoutStatus.FAILED, remote)
        )
        return "failed"
    payout.status, payout.due_at = PayoutStatus.SENT, now + timedelta(seconds=POLL_S)
    payout.claim, payout.last_error = None, None
    await payout.save()
    return "pending"


async def _refused(payout: Payout, w: Withdrawal, exc: PaymentProviderError) -> str:
    """The provider refused the request outright (4xx): nothing was sent."""
    reason = f"Mercado Pago {exc.status}: {exc.provider_message}"[:REASON_MAX]

    async def mark(_w: Withdrawal, conn: Any) -> None:
        payout.status, payout.due_at, payout.claim = PayoutStatus.FAILED, None, None
        payout.last_error = reason
        payout.provider_status, payout.provider_detail = "refused", exc.error[:64] or None
        await payout.save(using_db=conn)

    await fail_withdrawal(w.id, ACTOR, reason, then=mark)
    return "failed"


async def _later(payout: Payout, now: datetime, error: Exception) -> str:
    """No usable answer: ask again after a backoff."""
    due = now + _backoff(payout.attempts)
    await _save(payout, due_at=due, claim=None, last_error=str(error)[:REASON_MAX])
    return "pending"


async def _stuck(payout: Payout, why: str) -> str:
    """An operator decides (the withdrawal stays processing; `withdrawal_sla` alerts)."""
    await _save(payout, status=PayoutStatus.STUCK, due_at=None, claim=None, last_error=why)
    return "stuck"


async def _send(gateway: PayoutGateway, payout: Payout, w: Withdrawal, now: datetime) -> str:
    """Send (or send again, same key: the look-up of a lost answer) and apply the answer."""
    if payout.sent_at is not None and now - payout.sent_at > RESEND_WINDOW:
        since = payout.sent_at.isoformat(timespec="seconds")
        return await _stuck(payout, f"no answer from Mercado Pago since {since}: check its panel")
    # written before the call: a crash from here on is a lost answer, sent again
    await _save(
        payout,
        status=PayoutStatus.SENT,
        attempts=payout.attempts + 1,
        sent_at=payout.sent_at or now,
    )
    request = PayoutRequest(
        idempotency_key=payout.idempotency_key,
        external_reference=f"vitrine-withdrawal-{w.id}",
        amount_cents=w.amount_cents,
        pix_key_type=w.pix_key_type,
        pix_key=w.pix_key,
    )
    try:
        remote = await gateway.send_pix(request)
    except PaymentProviderUnavailable as exc:  # no answer: the transfer may exist
        return await _later(payout, now, exc)
    except PaymentProviderError as exc:
        if payout.attempts > 1:  # an earlier send may have made the transfer: do not guess
            return await _stuck(payout, f"refused on a repeated send: {exc}"[:REASON_MAX])
        return await _refused(payout, w, exc)
    return await _apply(payout, w, remote, now)


async def _advance(gateway: PayoutGateway, payout: Payout, now: datetime) -> str:
    w = await Withdrawal.get_or_none(id=payout.withdrawal_id)
    if w is None or w.status != WithdrawalStatus.PROCESSING:
        await _save(payout, due_at=None, claim=None, last_error="withdrawal no longer processing")
        return "skipped"
    if not payout.provider_id:
        return await _send(gateway, payout, w, now)
    try:  # known at the provider: poll it by id until it is final
        remote = await gateway.get_payout(payout.provider_id)
    except PaymentProviderError as exc:  # unreachable, not found (yet), refused: ask again
        return await _later(payout, now, exc)
    return await _apply(payout, w, remote, now)


async def run_once(gateway: PayoutGateway, now: datetime | None = None) -> PayoutReport:
    """Send, look up or poll every due payout once; safe on several nodes at once."""
    now = now or datetime.now(UTC)
    report = PayoutReport()
    for payout in await claim_due(Payout, "due_at", "claim", now, batch=BATCH, hold_s=CLAIM_S):
        try:
            result = await _advance(gateway, payout, now)
        except (ShopError, IllegalTransition) as exc:  # moved meanwhile: the next pass sees it
            report.errors.append(f"payout {payout.id}: {exc}")
            continue
        if result == "paid":
            report.paid += 1
        elif result == "failed":
            report.failed += 1
        elif result == "pending":
            report.pending += 1
    return report


async def run_forever(gateway: PayoutGateway, interval: float, stop: asyncio.Event) -> None:
    """`run_once` every `interval` seconds until `stop` is set (the reconciler runs it)."""
    while not stop.is_set():
        try:
            report = await run_once(gateway)
            if report.paid or report.failed or report.errors:
                log.info("payouts: %s", report)
        except Exception:  # noqa: BLE001 - keep the loop alive; the next pass retries
            log.exception("payout pass failed")
        try:
            await asyncio.wait_for(stop.wait(), interval)
        except TimeoutError:
            pass


async def retry_payout(withdrawal_id: int, actor: str, *, manual: bool) -> Withdrawal:
    """A failed payout again, as a new withdrawal of the same amount to the same key: debited
    from the balance (the failure returned it), approved, and paid automatically or, with
    `manual`, left for an operator to pay by hand and complete with the proof. Once only."""
    old = await Withdrawal.get_or_none(id=withdrawal_id)
    if old is None:
        raise WithdrawalNotFound(f"withdrawal {withdrawal_id} does not exist")
    if old.status != WithdrawalStatus.FAILED:
        raise InvalidStateChange(f"withdrawal {withdrawal_id} is {old.status}, not failed")
    taken = await Payout.filter(withdrawal_id=old.id, superseded_by__isnull=True).update(
        superseded_by=0
    )
    if not taken:
        raise InvalidStateChange(f"withdrawal {withdrawal_id} was already retried")
    try:
        new = await request_withdrawal(
            old.tenant_id, old.amount_cents, old.pix_key, actor, old.pix_key_type
        )
    except ShopError:
        await Payout.filter(withdrawal_id=old.id).update(superseded_by=None)
        raise
    await Payout.filter(withdrawal_id=old.id).update(superseded_by=new.id)
    await audit.record(
        actor,
        "withdrawal.payout_retried",
        "withdrawal",
        old.id,
        tenant_id=old.tenant_id,
        after={"withdrawal_id": new.id, "manual": manual},
    )
    return await approve(new.id, actor, automatic=not manual)


def payout_json(w: Withdrawal, payout: Payout | None) -> dict[str, Any]:
    """The payout of `w` for the admin API (`mode` manual when the platform is not paying)."""

    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    if payout is None:
        return {"withdrawal_id": w.id, "mode": "manual", "status": None}
    return {
        "withdrawal_id": w.id,
        "mode": "automatic",
        "status": str(payout.status),
        "provider_id": payout.provider_id,
        "provider_status": payout.provider_status,
        "provider_detail": payout.provider_detail,
        "e2e_id": payout.e2e_id,
        "attempts": payout.attempts,
        "last_error": payout.last_error,
        "retried_as": payout.superseded_by or None,
        "created_at": iso(payout.created_at),
        "sent_at": iso(payout.sent_at),
        "next_check_at": iso(payout.due_at),
    }
