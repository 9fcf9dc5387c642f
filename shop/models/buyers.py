"""Buyers a store refuses to sell to (its blocklist)."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from shop.models.accounts import Tenant
    from shop.models.orders import Order


class BlockSource(StrEnum):
    MANUAL = "manual"  # the seller blocked them (from an order, or by Discord id)
    CHARGEBACK = "chargeback"  # a payment of theirs was charged back
    MED = "med"  # a PIX of theirs was returned through the Central Bank's MED


class BlockedBuyer(Model):
    """One Discord user a store does not sell to; lifting the block deletes the row (the audit
    log keeps the history)."""

    id = fields.IntField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="blocked_buyers", on_delete=fields.CASCADE
    )
    tenant_id: int
    discord_id = fields.CharField(max_length=32)  # as Order.buyer_discord_id
    source = fields.CharEnumField(BlockSource, max_length=16, default=BlockSource.MANUAL)
    reason = fields.CharField(max_length=200, default="")
    # The order that led to the block (blocked from it, or charged back), if any.
    order: fields.ForeignKeyNullableRelation[Order] = fields.ForeignKeyField(
        "models.Order", related_name="buyer_blocks", null=True, on_delete=fields.SET_NULL
    )
    order_id: int | None
    created_by = fields.CharField(max_length=100)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "blocked_buyers"
        unique_together = (("tenant", "discord_id"),)
