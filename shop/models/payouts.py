"""Automatic PIX payouts of withdrawals (`shop.payouts`): one row per paid-out withdrawal."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

from shop.states import PayoutStatus

if TYPE_CHECKING:
    from shop.models.money import Withdrawal


class Payout(Model):
    """The platform's PIX to the seller for one approved withdrawal.

    Written in the approval's transaction (the intent to pay exists before any call), so a
    crash never loses a payout nor makes a second one: every send, first or repeated, carries
    the same `idempotency_key`. `due_at` is when the sender must act next (send, look up,
    poll); NULL once final. `claim` is the sender's token (`shop.notify.claims.claim_due`).
    """

    id = fields.BigIntField(primary_key=True)
    withdrawal: fields.OneToOneRelation[Withdrawal] = fields.OneToOneField(
        "models.Withdrawal", related_name="payout", on_delete=fields.RESTRICT
    )
    withdrawal_id: int
    idempotency_key = fields.CharField(max_length=64, unique=True)
    status = fields.CharEnumField(PayoutStatus, max_length=16, default=PayoutStatus.QUEUED)
    provider_id = fields.CharField(max_length=64, null=True)  # Mercado Pago's transaction id
    provider_status = fields.CharField(max_length=32, null=True)
    provider_detail = fields.CharField(max_length=64, null=True)
    e2e_id = fields.CharField(max_length=40, null=True)  # the PIX end-to-end id: the proof
    attempts = fields.IntField(default=0)  # requests sent (POST or GET)
    last_error = fields.CharField(max_length=300, null=True)
    due_at = fields.DatetimeField(null=True, db_index=True)
    claim = fields.CharField(max_length=16, null=True)
    superseded_by = fields.BigIntField(null=True)  # the withdrawal that retried this one
    created_at = fields.DatetimeField(auto_now_add=True)
    sent_at = fields.DatetimeField(null=True)  # the first send
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "payouts"
