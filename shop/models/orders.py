"""Orders, their PIX payments, and every webhook delivery we received."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

from shop.states import OrderStatus, PaymentStatus

if TYPE_CHECKING:
    from fleet.models import BotInstance
    from shop.models.accounts import Tenant
    from shop.models.cart import Cart
    from shop.models.catalog import Coupon, Product, Variation


class DeliveryPath(StrEnum):
    DM = "dm"
    CHANNEL = "channel"  # private thread or ephemeral follow-up in the buying channel
    FAILED = "failed"


class Order(Model):
    id = fields.BigIntField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="orders", on_delete=fields.RESTRICT
    )
    tenant_id: int
    instance: fields.ForeignKeyNullableRelation[BotInstance] = fields.ForeignKeyField(
        "models.BotInstance", related_name="orders", null=True, on_delete=fields.SET_NULL
    )
    instance_id: int | None
    product: fields.ForeignKeyRelation[Product] = fields.ForeignKeyField(
        "models.Product", related_name="orders", on_delete=fields.RESTRICT
    )
    product_id: int
    variation: fields.ForeignKeyRelation[Variation] = fields.ForeignKeyField(
        "models.Variation", related_name="orders", on_delete=fields.RESTRICT
    )
    variation_id: int
    coupon: fields.ForeignKeyNullableRelation[Coupon] = fields.ForeignKeyField(
        "models.Coupon", related_name="orders", null=True, on_delete=fields.SET_NULL
    )
    coupon_id: int | None
    # Set when the order is one line of a cart paid by one PIX (shop.models.cart).
    cart: fields.ForeignKeyNullableRelation[Cart] = fields.ForeignKeyField(
        "models.Cart", related_name="orders", null=True, on_delete=fields.RESTRICT
    )
    cart_id: int | None
    # The Discord interaction that created it: a double click creates one order.
    interaction_id = fields.CharField(max_length=32, unique=True)
    buyer_discord_id = fields.CharField(max_length=32, db_index=True)
    buyer_name = fields.CharField(max_length=100, default="")
    guild_id = fields.CharField(max_length=32, null=True)
    channel_id = fields.CharField(max_length=32, null=True)
    locale = fields.CharField(max_length=8, default="pt-BR")
    quantity = fields.IntField()
    unit_price_cents = fields.BigIntField()
    discount_cents = fields.BigIntField(default=0)
    total_cents = fields.BigIntField()
    status = fields.CharEnumField(
        OrderStatus, max_length=24, default=OrderStatus.PENDING, db_index=True
    )
    reserved_until = fields.DatetimeField(null=True)
    delivery_path = fields.CharEnumField(DeliveryPath, max_length=16, null=True)
    delivery_attempts = fields.IntField(default=0)
    # The delivery owed (shop.outbox): set in the same UPDATE that makes the order paid (or
    # fills it from a restock), cleared by the one that moves it on (delivered, waiting_stock,
    # refunded). The relay wakes the order's worker when it is due. NULL: nothing owed.
    wake_at = fields.DatetimeField(null=True, db_index=True)
    # The delivery message (shop.delivery.record_send_attempt / record_sent): the nonce it is
    # created with (Discord's enforce_nonce), the channel it goes to, when a create there was
    # first attempted, and the message Discord returned (NULL: not known to exist yet).
    delivery_nonce = fields.CharField(max_length=25, null=True)
    delivery_channel_id = fields.CharField(max_length=32, null=True)
    delivery_attempted_at = fields.DatetimeField(null=True)
    delivery_message_id = fields.CharField(max_length=32, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)
    paid_at = fields.DatetimeField(null=True)
    delivered_at = fields.DatetimeField(null=True)
    closed_at = fields.DatetimeField(null=True)  # expired, cancelled or refunded

    class Meta:
        table = "orders"
        indexes = (("tenant", "status"),)


class Payment(Model):
    """A PIX charge; our UUID is the external_reference and the idempotency key."""

    id = fields.UUIDField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="payments", on_delete=fields.RESTRICT
    )
    tenant_id: int
    order: fields.ForeignKeyRelation[Order] = fields.ForeignKeyField(
        "models.Order", related_name="payments", on_delete=fields.RESTRICT
    )
    order_id: int
    # A cart's one payment: `order` is then the cart's lead line (shop.models.cart).
    cart: fields.ForeignKeyNullableRelation[Cart] = fields.ForeignKeyField(
        "models.Cart", related_name="payments", null=True, on_delete=fields.RESTRICT
    )
    cart_id: int | None
    provider = fields.CharField(max_length=20, default="mercadopago")
    provider_payment_id = fields.CharField(max_length=40, unique=True, null=True)
    status = fields.CharEnumField(
        PaymentStatus, max_length=16, default=PaymentStatus.PENDING, db_index=True
    )
    status_detail = fields.CharField(max_length=60, default="")
    amount_cents = fields.BigIntField()
    refunded_cents = fields.BigIntField(default=0)
    qr_code = fields.TextField(default="")
    ticket_url = fields.CharField(max_length=500, default="")
    expires_at = fields.DatetimeField(null=True)
    approved_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)
    last_checked_at = fields.DatetimeField(null=True)
    # The last payment object seen from the provider.
    provider_data: fields.JSONField[dict[str, Any] | None] = fields.JSONField(null=True)
    # While the PIX is open the reconciler polls it (shop.payments.payment_polling): when next,
    # and how many times so far. NULL next_poll_at with poll_attempts > 0: polling stopped.
    next_poll_at = fields.DatetimeField(null=True, db_index=True)
    poll_attempts = fields.IntField(default=0)
    # Which path first moved the payment to approved: webhook, poll, button, reconcile, admin…
    confirmed_via = fields.CharField(max_length=16, default="", db_index=True)

    class Meta:
        table = "payments"


class WebhookEvent(Model):
    """Webhook deliveries worth keeping (signed, or an IPN about our payment), with what we
    did about it; forged and repeated ones are only counted (shop.payments.webhook_guard)."""

    id = fields.BigIntField(primary_key=True)
    provider = fields.CharField(max_length=20, default="mercadopago")
    received_at = fields.DatetimeField(auto_now_add=True, db_index=True)
    request_id = fields.CharField(max_length=100, default="")
    notification_id = fields.CharField(max_length=64, default="")
    topic = fields.CharField(max_length=40, default="")
    action = fields.CharField(max_length=60, default="")
    data_id = fields.CharField(max_length=64, default="", db_index=True)
    signature_valid = fields.BooleanField(default=False)
    # accepted | processed | unknown_payment | ignored | error (older rows: duplicate,
    # invalid_signature, stale)
    outcome = fields.CharField(max_length=24, db_index=True)
    # Set only for accepted deliveries; unique, so a replay is recognised.
    dedupe_key = fields.CharField(max_length=200, unique=True, null=True)
    detail = fields.TextField(default="")
    body: fields.JSONField[Any] = fields.JSONField(null=True)

    class Meta:
        table = "webhook_events"
