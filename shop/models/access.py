"""Access a buyer holds in a store's guild (issue 16): the roles an order granted, for ever or
until `ends_at`. One row per (store, buyer, variation) while active; a renewal is an order
that extends the row from its current end. Expiry, reminders and rejoin checks are due work
(`next_due_at`), claimed like deliveries so several nodes run each once."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from shop.models.accounts import Tenant
    from shop.models.catalog import Variation
    from shop.models.orders import Order


class AccessStatus(StrEnum):
    ACTIVE = "active"  # roles held (or owed: `roles_applied_at` NULL)
    ENDED = "ended"  # the period ran out; roles removed (or owed: `roles_removed_at` NULL)
    REVOKED = "revoked"  # refund, chargeback, MED or staff; roles removed (or owed)


class AccessGrant(Model):
    id = fields.BigIntField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="access_grants", on_delete=fields.CASCADE
    )
    tenant_id: int
    # NULL for a grant staff made by hand without a product.
    variation: fields.ForeignKeyNullableRelation[Variation] = fields.ForeignKeyField(
        "models.Variation", related_name="access_grants", null=True, on_delete=fields.SET_NULL
    )
    variation_id: int | None
    # The order that started it (renewals are linked through AccessOrder).
    order: fields.ForeignKeyNullableRelation[Order] = fields.ForeignKeyField(
        "models.Order", related_name="access_grants", null=True, on_delete=fields.SET_NULL
    )
    order_id: int | None
    buyer_discord_id = fields.CharField(max_length=32, db_index=True)
    guild_id = fields.CharField(max_length=32)
    # Role snowflakes as strings, fixed when granted (later edits of the variation do not
    # change what an existing access holds).
    role_ids: fields.JSONField[list[str]] = fields.JSONField(default=list)
    status = fields.CharEnumField(AccessStatus, max_length=16, default=AccessStatus.ACTIVE)
    starts_at = fields.DatetimeField()
    ends_at = fields.DatetimeField(null=True)  # NULL: no end (a role bought for good)
    renewals = fields.IntField(default=0)
    # The store-wide buyer role's removal owed after a refund (`shop.access_revoke`), not a
    # product's access: its role goes only if the buyer has no delivered order left in the
    # store (decided by the worker when it runs). Never listed as a subscriber.
    store_role = fields.BooleanField(default=False)
    # Reminders sent for the current period (cleared when a renewal extends it).
    reminded_3d_at = fields.DatetimeField(null=True)
    reminded_1d_at = fields.DatetimeField(null=True)
    # Role sync with Discord: when the roles were last confirmed added / removed.
    roles_applied_at = fields.DatetimeField(null=True)
    roles_removed_at = fields.DatetimeField(null=True)
    ended_reason = fields.CharField(
        max_length=32, default=""
    )  # expired|refund|chargeback|med|staff
    # Due work (reminder, expiry, role sync): when next, and who holds it (like orders.wake_at
    # and seller_notices.claim). NULL next_due_at: nothing owed.
    next_due_at = fields.DatetimeField(null=True, db_index=True)
    claim = fields.CharField(max_length=32, null=True)
    attempts = fields.IntField(default=0)
    last_error = fields.TextField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "access_grants"
        indexes = (("tenant", "status"), ("tenant", "buyer_discord_id"))


class AccessOrder(Model):
    """Every order that started or extended an access: the renewal history and MRR source."""

    id = fields.BigIntField(primary_key=True)
    access: fields.ForeignKeyRelation[AccessGrant] = fields.ForeignKeyField(
        "models.AccessGrant", related_name="orders", on_delete=fields.CASCADE
    )
    access_id: int
    order: fields.ForeignKeyRelation[Order] = fields.ForeignKeyField(
        "models.Order", related_name="access_links", on_delete=fields.CASCADE, unique=True
    )
    order_id: int
    # The period this order paid for.
    period_start = fields.DatetimeField()
    period_end = fields.DatetimeField(null=True)
    renewal = fields.BooleanField(default=False)
    # Set when the order was refunded (refund, chargeback, MED): the period is kept as
    # history; the grant lost what was left of it (`shop.access_revoke`).
    refunded_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "access_orders"
