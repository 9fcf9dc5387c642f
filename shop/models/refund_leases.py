"""The one refund of a payment in flight (`shop.payments.refund_lease`): a row per payment,
claimed by a conditional INSERT/UPDATE before a refund is computed and sent, deleted when it is
booked. Two refunds of one payment (two lines of a cart, a line and the whole cart, two
presses) are thereby serialised: the second is refused while the first is in flight."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from shop.models.orders import Payment


class RefundLease(Model):
    """A payment's refund in flight, held by `token` until `expires_at` (then anyone's)."""

    id = fields.BigIntField(primary_key=True)
    payment: fields.OneToOneRelation[Payment] = fields.OneToOneField(
        "models.Payment", related_name="refund_lease", on_delete=fields.CASCADE
    )
    payment_id: str
    token = fields.CharField(max_length=32)
    expires_at = fields.DatetimeField()

    class Meta:
        table = "refund_leases"
