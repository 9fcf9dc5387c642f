"""What FILE and MANUAL variations deliver besides text (issue 16).

`ProductFile`: the file a FILE variation sends as a DM attachment; its bytes are encrypted with
the token vault (base64 inside the Fernet token) and kept in the database, so backups carry
them encrypted like stock. `FulfilmentNote`: the note staff wrote when delivering a MANUAL
order by hand, encrypted too (it often holds an access or a link); the delivery job sends it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from shop.models.accounts import Tenant
    from shop.models.catalog import Variation
    from shop.models.orders import Order


class ProductFile(Model):
    id = fields.IntField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="product_files", on_delete=fields.CASCADE
    )
    tenant_id: int
    # One file per variation: a new upload replaces it (orders re-download the current one).
    variation: fields.OneToOneRelation[Variation] = fields.OneToOneField(
        "models.Variation", related_name="product_file", on_delete=fields.CASCADE
    )
    variation_id: int
    name = fields.CharField(max_length=100)  # sanitised; the attachment's filename
    size = fields.IntField()  # bytes of the plain file
    sha256 = fields.CharField(max_length=64)  # of the plain file, shown to the seller
    content_enc = fields.TextField()
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "product_files"


class FulfilmentNote(Model):
    id = fields.BigIntField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="fulfilment_notes", on_delete=fields.CASCADE
    )
    tenant_id: int
    order: fields.OneToOneRelation[Order] = fields.OneToOneField(
        "models.Order", related_name="fulfilment_note", on_delete=fields.CASCADE
    )
    order_id: int
    note_enc = fields.TextField()
    actor = fields.CharField(max_length=64)  # who delivered: "discord:<id>" or "account:<id>"
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "fulfilment_notes"
