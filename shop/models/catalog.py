"""Catalog: products, variations (priced in integer centavos), stock items, coupons."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

from shop.states import StockStatus

if TYPE_CHECKING:
    from shop.models.accounts import Tenant
    from shop.models.orders import Order


class ProductKind(StrEnum):
    """What a variation delivers (issue 16)."""

    STOCK = "stock"  # unique stock lines, one per unit (the first wave)
    ROLE_ONLY = "role_only"  # nothing to deliver but the roles / timed access
    SHARED = "shared"  # the same text or link for every buyer (`shared_content_enc`)
    FILE = "file"  # a file the seller uploaded (`ProductFile`), sent as a DM attachment
    MANUAL = "manual"  # a service: staff fulfil it by hand (awaiting_fulfilment)


class Product(Model):
    id = fields.IntField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="products", on_delete=fields.CASCADE
    )
    tenant_id: int
    name = fields.CharField(max_length=100)
    description = fields.TextField(default="")
    image_url = fields.CharField(max_length=500, null=True)
    max_per_order = fields.IntField(default=10)
    active = fields.BooleanField(default=True)
    deleted_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    variations: fields.ReverseRelation[Variation]

    class Meta:
        table = "products"


class Variation(Model):
    id = fields.IntField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="variations", on_delete=fields.CASCADE
    )
    tenant_id: int
    product: fields.ForeignKeyRelation[Product] = fields.ForeignKeyField(
        "models.Product", related_name="variations", on_delete=fields.CASCADE
    )
    product_id: int
    name = fields.CharField(max_length=100)
    price_cents = fields.BigIntField()
    kind = fields.CharEnumField(ProductKind, max_length=16, default=ProductKind.STOCK)
    # Roles of the store's guild granted on delivery (snowflakes as strings), besides the
    # store's buyer role; checked against the bot's hierarchy when saved.
    role_ids: fields.JSONField[list[str]] = fields.JSONField(default=list)
    # Timed access: the roles last this many days from delivery (NULL: for good).
    duration_days = fields.IntField(null=True)
    # SHARED: the text or link every buyer gets, encrypted with the vault like stock.
    shared_content_enc = fields.TextField(null=True)
    # SHARED / FILE / ROLE_ONLY / MANUAL: at most this many units sold (NULL: unlimited);
    # `sold_count` moves by conditional updates like stock.
    sales_cap = fields.IntField(null=True)
    sold_count = fields.IntField(default=0)
    active = fields.BooleanField(default=True)
    deleted_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "variations"


class StockItem(Model):
    """One deliverable unit (key, account, code, text). Sold items are never reused."""

    id = fields.BigIntField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="stock_items", on_delete=fields.CASCADE
    )
    tenant_id: int
    variation: fields.ForeignKeyRelation[Variation] = fields.ForeignKeyField(
        "models.Variation", related_name="stock_items", on_delete=fields.CASCADE
    )
    variation_id: int
    # Encrypted with the token vault: stock is the seller's merchandise.
    content_enc = fields.TextField()
    # HMAC-SHA256 (keyed with STOCK_HASH_KEY) of the plain content, to refuse duplicates
    # within a variation without storing a digest anyone could match against known keys.
    content_hash = fields.CharField(max_length=64)
    status = fields.CharEnumField(StockStatus, max_length=16, default=StockStatus.AVAILABLE)
    order: fields.ForeignKeyNullableRelation[Order] = fields.ForeignKeyField(
        "models.Order", related_name="stock_items", null=True, on_delete=fields.RESTRICT
    )
    order_id: int | None
    reserved_until = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    sold_at = fields.DatetimeField(null=True)

    class Meta:
        table = "stock_items"
        unique_together = (("variation", "content_hash"),)
        indexes = (("variation", "status"),)


class CouponKind(StrEnum):
    PERCENT = "percent"  # value in basis points (1000 = 10 %)
    FIXED = "fixed"  # value in centavos


class Coupon(Model):
    id = fields.IntField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="coupons", on_delete=fields.CASCADE
    )
    tenant_id: int
    code = fields.CharField(max_length=40)
    kind = fields.CharEnumField(CouponKind, max_length=16)
    value = fields.BigIntField()
    expires_at = fields.DatetimeField(null=True)
    max_uses = fields.IntField(null=True)
    uses = fields.IntField(default=0)
    min_order_cents = fields.BigIntField(default=0)
    # Empty = valid for every product of the store.
    products: fields.ManyToManyRelation[Product] = fields.ManyToManyField(
        "models.Product", related_name="coupons", through="coupon_products"
    )
    active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "coupons"
        unique_together = (("tenant", "code"),)
