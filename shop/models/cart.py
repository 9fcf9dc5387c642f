"""The cart (issue 17): what a buyer has picked in a store before paying (`CartLine`), and a
checkout of several lines paid by one PIX (`Cart`).

A paid cart is a group of orders: each line becomes an `Order` (its own variation, quantity,
stock, delivery, `waiting_stock`, refund, access, rating, ticket) with `Order.cart` set, so
every per-order machinery works on a line unchanged. The cart's one `Payment` has
`Payment.cart` set and `Payment.order` = the cart's lead line (the first); payment
transitions move every order of the cart together."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from shop.models.accounts import Tenant
    from shop.models.catalog import Coupon, Variation
    from shop.models.orders import Order


class CartLine(Model):
    """One variation in a buyer's open cart; bounded per buyer and store (shop.cart)."""

    id = fields.BigIntField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="cart_lines", on_delete=fields.CASCADE
    )
    tenant_id: int
    buyer_discord_id = fields.CharField(max_length=32)
    variation: fields.ForeignKeyRelation[Variation] = fields.ForeignKeyField(
        "models.Variation", related_name="cart_lines", on_delete=fields.CASCADE
    )
    variation_id: int
    quantity = fields.IntField(default=1)
    added_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "cart_lines"
        unique_together = (("tenant", "buyer_discord_id", "variation"),)


class Cart(Model):
    """A checkout of several lines: one PIX for the lines' orders (`orders`)."""

    id = fields.BigIntField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="carts", on_delete=fields.RESTRICT
    )
    tenant_id: int
    buyer_discord_id = fields.CharField(max_length=32, db_index=True)
    # The Discord id that created it (checkout card message): a double click creates one.
    interaction_id = fields.CharField(max_length=32, unique=True)
    coupon: fields.ForeignKeyNullableRelation[Coupon] = fields.ForeignKeyField(
        "models.Coupon", related_name="carts", null=True, on_delete=fields.SET_NULL
    )
    coupon_id: int | None
    subtotal_cents = fields.BigIntField()
    discount_cents = fields.BigIntField(default=0)
    total_cents = fields.BigIntField()
    created_at = fields.DatetimeField(auto_now_add=True)

    orders: fields.ReverseRelation[Order]

    class Meta:
        table = "carts"
