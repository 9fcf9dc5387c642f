"""Seller-connected Mercado Pago accounts (issue 20): a store's OAuth connection, its money
mode and the history of switches, and the charges made on a seller's account."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from shop.models.accounts import Tenant
    from shop.models.orders import Payment


class MoneyMode(StrEnum):
    PLATFORM = "platform"  # the platform collects: ledger balance, holds, withdrawals
    CONNECTED = "connected"  # paid into the seller's own Mercado Pago; fee to the platform


class MPConnection(Model):
    """A store's authorisation of the platform's Mercado Pago application. Tokens are
    encrypted with the vault (as bot tokens); disconnecting blanks them and keeps the row."""

    id = fields.IntField(primary_key=True)
    tenant: fields.OneToOneRelation[Tenant] = fields.OneToOneField(
        "models.Tenant", related_name="mp_connection", on_delete=fields.CASCADE
    )
    tenant_id: int
    money_mode = fields.CharEnumField(MoneyMode, max_length=16, default=MoneyMode.PLATFORM)
    mp_user_id = fields.CharField(max_length=32, db_index=True)
    access_token_enc = fields.TextField()
    refresh_token_enc = fields.TextField()
    public_key = fields.CharField(max_length=120, default="")
    scopes = fields.CharField(max_length=200, default="")
    live_mode = fields.BooleanField(default=False)
    expires_at = fields.DatetimeField(db_index=True)
    connected_at = fields.DatetimeField()
    refreshed_at = fields.DatetimeField(null=True)
    disconnected_at = fields.DatetimeField(null=True)
    # One node refreshes a token (Mercado Pago's refresh tokens are single use): the one
    # whose conditional UPDATE set this lease.
    refresh_claimed_until = fields.DatetimeField(null=True)
    refresh_error = fields.CharField(max_length=200, default="")

    class Meta:
        table = "mp_connections"


class MoneyModeChange(Model):
    """One switch of a store between platform-collected and connected (append-only)."""

    id = fields.IntField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="money_mode_changes", on_delete=fields.CASCADE
    )
    tenant_id: int
    from_mode = fields.CharEnumField(MoneyMode, max_length=16)
    to_mode = fields.CharEnumField(MoneyMode, max_length=16)
    actor = fields.CharField(max_length=64)
    reason = fields.CharField(max_length=200, default="")
    mp_user_id = fields.CharField(max_length=32, default="")
    changed_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "money_mode_changes"


class ConnectedCharge(Model):
    """A PIX charge created with a seller's token: which account it lives in (so it is read
    and refunded with that seller's token) and the platform's marketplace fee. `sold_at` is
    set when the order is paid: the sale's record for reports (no ledger entry, no balance)."""

    id = fields.IntField(primary_key=True)
    payment: fields.OneToOneRelation[Payment] = fields.OneToOneField(
        "models.Payment", related_name="connected_charge", on_delete=fields.CASCADE
    )
    payment_id: str
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="connected_charges", on_delete=fields.RESTRICT
    )
    tenant_id: int
    mp_user_id = fields.CharField(max_length=32, db_index=True)
    amount_cents = fields.BigIntField()
    fee_cents = fields.BigIntField()
    created_at = fields.DatetimeField(auto_now_add=True)
    sold_at = fields.DatetimeField(null=True, db_index=True)

    class Meta:
        table = "mp_connected_charges"
