"""Buyer support tickets (issue 17): one private Discord thread per order in trouble, the
staff's actions on it, and the transcript kept when it is closed; per-store ticket settings."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from shop.models.accounts import Tenant
    from shop.models.orders import Order


class TicketStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class Ticket(Model):
    id = fields.BigIntField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="tickets", on_delete=fields.CASCADE
    )
    tenant_id: int
    order: fields.ForeignKeyRelation[Order] = fields.ForeignKeyField(
        "models.Order", related_name="tickets", on_delete=fields.RESTRICT
    )
    order_id: int
    buyer_discord_id = fields.CharField(max_length=32)
    status = fields.CharEnumField(TicketStatus, max_length=8, default=TicketStatus.OPEN)
    # The order's id while the ticket is open, NULL once closed: unique, so a second open
    # ticket for one order is refused by the database, whichever process tries.
    open_key = fields.BigIntField(null=True, unique=True)
    # The private thread in Discord (or the private channel, `in_channel`)
    thread_id = fields.CharField(max_length=32, null=True)
    in_channel = fields.BooleanField(default=False)
    opened_at = fields.DatetimeField(auto_now_add=True)
    first_response_at = fields.DatetimeField(null=True)  # the staff's first action or message
    closed_at = fields.DatetimeField(null=True)
    closed_by = fields.CharField(max_length=100, null=True)
    # Kept on close: [{"author", "author_id", "staff", "at", "text", "attachments"}], oldest first.
    transcript: fields.JSONField[list[dict[str, Any]] | None] = fields.JSONField(null=True)

    class Meta:
        table = "tickets"
        indexes = (("tenant", "status"), ("tenant", "buyer_discord_id", "opened_at"))


class TicketSettings(Model):
    """What the seller chose for tickets; a store without a row uses the defaults."""

    tenant: fields.OneToOneRelation[Tenant] = fields.OneToOneField(
        "models.Tenant", related_name="ticket_settings", on_delete=fields.CASCADE, primary_key=True
    )
    tenant_id: int
    staff_role_id = fields.CharField(max_length=32, null=True)  # may press the staff buttons
    # Set: each ticket is a private text channel under this category (deleted on close), not
    # a private thread in the support channel.
    category_id = fields.CharField(max_length=32, null=True)
    per_buyer_per_day = fields.IntField(default=3)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "ticket_settings"
