"""What the store owner is told (issue 18): the bot's DM and the dashboard's list."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from shop.models.accounts import Tenant


class NoticeKind(StrEnum):
    BOT_LOGIN = "bot_login"  # the bot cannot log in (token invalid or reset)
    BOT_INTENTS = "bot_intents"  # a privileged intent is off in the Developer Portal
    LOW_STOCK = "low_stock"
    WAITING_STOCK = "waiting_stock"  # paid orders wait for a restock
    WITHDRAWAL = "withdrawal"  # a withdrawal changed state
    REFUND = "refund"
    CHARGEBACK = "chargeback"


class NoticeStatus(StrEnum):
    PENDING = "pending"  # the DM is owed (`send_at`)
    SENT = "sent"  # the bot sent the DM
    OFF = "off"  # the owner turned this kind off: dashboard only
    NO_BOT = "no_bot"  # the bot cannot log in or has no way to DM: dashboard only
    FAILED = "failed"  # Discord refused it (DMs closed) or retries ran out: dashboard only


class SellerNotice(Model):
    id = fields.BigIntField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="notices", on_delete=fields.CASCADE
    )
    tenant_id: int
    kind = fields.CharEnumField(NoticeKind, max_length=16)
    params: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    # One notice per fact ("alert:12", "withdrawal:7:approved"): raising twice is harmless.
    dedupe_key = fields.CharField(max_length=120, null=True, unique=True)
    status = fields.CharEnumField(NoticeStatus, max_length=16, default=NoticeStatus.PENDING)
    # The DM is owed while set: when to try next (NULL: nothing owed).
    send_at = fields.DatetimeField(null=True, db_index=True)
    claim = fields.CharField(max_length=32, null=True)
    attempts = fields.IntField(default=0)
    last_error = fields.TextField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True, db_index=True)
    sent_at = fields.DatetimeField(null=True)

    class Meta:
        table = "seller_notices"
