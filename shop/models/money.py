"""Double-entry, append-only ledger in integer centavos; withdrawals (saques)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

from shop.states import WithdrawalStatus

if TYPE_CHECKING:
    from shop.models.accounts import Tenant
    from shop.models.orders import Order


class LedgerEntry(Model):
    """One leg of a ledger transaction; the legs of a `txn_id` sum to zero.

    Accounts are names: `seller:<tenant>` (what we owe a seller), `platform:fees`,
    `platform:clearing` (money held at Mercado Pago), `platform:payouts` (PIX sent out).
    """

    id = fields.BigIntField(primary_key=True)
    txn_id = fields.UUIDField(db_index=True)
    # Makes a booking idempotent: e.g. `sale:<payment id>` can be booked only once per account.
    idempotency_key = fields.CharField(max_length=120)
    account = fields.CharField(max_length=60, db_index=True)
    tenant: fields.ForeignKeyNullableRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="ledger_entries", null=True, on_delete=fields.RESTRICT
    )
    tenant_id: int | None
    amount_cents = fields.BigIntField()  # signed: credit > 0 for the account's holder
    kind = fields.CharField(max_length=24)  # sale | fee | refund | withdrawal | withdrawal_return
    order: fields.ForeignKeyNullableRelation[Order] = fields.ForeignKeyField(
        "models.Order", related_name="ledger_entries", null=True, on_delete=fields.RESTRICT
    )
    order_id: int | None
    withdrawal: fields.ForeignKeyNullableRelation[Withdrawal] = fields.ForeignKeyField(
        "models.Withdrawal", related_name="ledger_entries", null=True, on_delete=fields.RESTRICT
    )
    withdrawal_id: int | None
    available_at = fields.DatetimeField()  # end of the hold; withdrawable from then on
    memo = fields.CharField(max_length=200, default="")
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "ledger_entries"
        unique_together = (("idempotency_key", "account"),)


class Withdrawal(Model):
    id = fields.BigIntField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="withdrawals", on_delete=fields.RESTRICT
    )
    tenant_id: int
    amount_cents = fields.BigIntField()
    pix_key_type = fields.CharField(max_length=16)  # cpf | cnpj | email | phone | random
    pix_key = fields.CharField(max_length=100)
    status = fields.CharEnumField(
        WithdrawalStatus, max_length=16, default=WithdrawalStatus.REQUESTED, db_index=True
    )
    requested_at = fields.DatetimeField(auto_now_add=True)
    processing_at = fields.DatetimeField(null=True)
    completed_at = fields.DatetimeField(null=True)
    rejected_at = fields.DatetimeField(null=True)
    failed_at = fields.DatetimeField(null=True)  # the automatic payout failed (shop.payouts)
    reason = fields.TextField(null=True)
    transfer_id = fields.CharField(max_length=100, null=True)
    acted_by = fields.CharField(max_length=100, null=True)

    class Meta:
        table = "withdrawals"
