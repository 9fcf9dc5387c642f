"""Buyers' ratings of delivered orders (issue 17) and the DM that asks for them.

Both rows carry the work they owe as a due-time column (decision 9's shape, claimed with
`shop.notify.claims.claim_due`): `RatingAsk.ask_at` is the ask DM owed to the buyer,
`Rating.post_at` the feedback-channel message to post, edit or delete.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from shop.models.accounts import Tenant
    from shop.models.catalog import Product
    from shop.models.orders import Order

COMMENT_MAX = 500
REPLY_MAX = 500


class AskStatus(StrEnum):
    PENDING = "pending"  # the DM is owed (`ask_at`)
    SENT = "sent"
    FAILED = "failed"  # Discord refused it (50007: DMs closed) or retries ran out
    SKIPPED = "skipped"  # refunded, already rated, or the store has no bot that can log in


class RatingAsk(Model):
    """The DM asking the buyer of one delivered order for stars (one per order)."""

    id = fields.BigIntField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="rating_asks", on_delete=fields.CASCADE
    )
    tenant_id: int
    order: fields.OneToOneRelation[Order] = fields.OneToOneField(
        "models.Order", related_name="rating_ask", on_delete=fields.CASCADE
    )
    order_id: int
    status = fields.CharEnumField(AskStatus, max_length=16, default=AskStatus.PENDING)
    # The DM is owed while set: when to try (delivery + the store's delay, then backoff).
    ask_at = fields.DatetimeField(null=True, db_index=True)
    claim = fields.CharField(max_length=32, null=True)
    attempts = fields.IntField(default=0)
    last_error = fields.CharField(max_length=500, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    sent_at = fields.DatetimeField(null=True)

    class Meta:
        table = "rating_asks"


class Rating(Model):
    """One order's rating: stars and an optional comment, editable for a week after it was
    first given; the seller may answer once; only an operator deletes it (soft, audited)."""

    id = fields.BigIntField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="ratings", on_delete=fields.CASCADE
    )
    tenant_id: int
    order: fields.OneToOneRelation[Order] = fields.OneToOneField(
        "models.Order", related_name="rating", on_delete=fields.CASCADE
    )
    order_id: int
    product: fields.ForeignKeyRelation[Product] = fields.ForeignKeyField(
        "models.Product", related_name="ratings", on_delete=fields.CASCADE
    )
    product_id: int
    buyer_discord_id = fields.CharField(max_length=32)
    stars = fields.SmallIntField()
    comment = fields.CharField(max_length=COMMENT_MAX, default="")
    given_at = fields.DatetimeField()  # first given: the week to edit counts from here
    edited_at = fields.DatetimeField(null=True)
    reply = fields.CharField(max_length=REPLY_MAX, null=True)
    replied_at = fields.DatetimeField(null=True)
    replied_by = fields.CharField(max_length=100, null=True)
    deleted_at = fields.DatetimeField(null=True)
    deleted_by = fields.CharField(max_length=100, null=True)
    # The feedback channel's message (NULL: not posted yet) and the post/edit/delete owed.
    feedback_channel_id = fields.CharField(max_length=32, null=True)
    feedback_message_id = fields.CharField(max_length=32, null=True)
    post_at = fields.DatetimeField(null=True, db_index=True)
    post_claim = fields.CharField(max_length=32, null=True)
    post_attempts = fields.IntField(default=0)

    class Meta:
        table = "ratings"
        indexes = (("tenant", "product"),)
