"""Bot instances (one tenant bot each) and operational alerts."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

from fleet.states import DesiredState

if TYPE_CHECKING:
    from shop.models.accounts import Tenant


class BotInstance(Model):
    id = fields.IntField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="instances", on_delete=fields.CASCADE
    )
    tenant_id: int
    name = fields.CharField(max_length=100, default="")
    # Fernet ciphertext from core.vault; the plain token never touches the database.
    token_enc = fields.TextField()
    # One bot serves one store: the same Discord application under two stores would mix
    # their commands, guilds and deliveries.
    application_id = fields.CharField(max_length=32, null=True, unique=True)
    bot_user_id = fields.CharField(max_length=32, null=True)
    bot_username = fields.CharField(max_length=100, null=True)
    bot_avatar = fields.CharField(max_length=200, null=True)
    # Discord's `bot_public` as last read (onboarding and every bot start); None: not read yet.
    # True: anyone can add the bot to their server, so the dashboard warns the seller.
    bot_public = fields.BooleanField(null=True)
    desired_state = fields.CharEnumField(DesiredState, max_length=16, default=DesiredState.RUNNING)
    suspended = fields.BooleanField(default=False)
    suspension_reason = fields.TextField(null=True)
    suspended_by = fields.CharField(max_length=100, null=True)
    # Bumped when the token or settings change, so the orchestrator restarts the worker.
    config_version = fields.IntField(default=1)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "bot_instances"

    def __str__(self) -> str:
        return f"BotInstance#{self.id}"


class AlertKind(StrEnum):
    CRASHLOOP = "crashloop"
    REPEATED_ERROR = "repeated_error"
    AUTO_SUSPENDED = "auto_suspended"
    LOW_STOCK = "low_stock"
    WAITING_STOCK = "waiting_stock"
    WEBHOOK_FORGERY = "webhook_forgery"  # many bad-signature webhooks per minute
    NEGATIVE_BALANCE = "negative_balance"  # a refund/chargeback left a seller owing us money
    FOREIGN_GUILD = "foreign_guild"  # the bot was in a server that is not its store's; it left


class Alert(Model):
    id = fields.IntField(primary_key=True)
    kind = fields.CharEnumField(AlertKind, max_length=24)
    instance: fields.ForeignKeyNullableRelation[BotInstance] = fields.ForeignKeyField(
        "models.BotInstance", related_name="alerts", null=True, on_delete=fields.CASCADE
    )
    instance_id: int | None
    tenant: fields.ForeignKeyNullableRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="alerts", null=True, on_delete=fields.CASCADE
    )
    tenant_id: int | None
    message = fields.TextField()
    details: fields.JSONField[dict[str, Any] | None] = fields.JSONField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True, db_index=True)
    acknowledged_at = fields.DatetimeField(null=True)
    acknowledged_by = fields.CharField(max_length=100, null=True)

    class Meta:
        table = "alerts"
