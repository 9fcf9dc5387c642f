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
    # issue 18 (fleet.alerting raises and resolves them; shop.notify tells people)
    CONFIG_ERROR = "config_error"  # the bot cannot log in: token invalid, intents missing
    PAYMENT_LATE = "payment_late"  # the reconciler found a payment its webhook never brought
    WITHDRAWAL_SLA = "withdrawal_sla"  # a withdrawal pending longer than WITHDRAWAL_SLA_HOURS
    DISK_SPACE = "disk_space"  # free space on the data folder's disk under the threshold
    BACKUP_STALE = "backup_stale"  # the newest backup is older than ALERT_BACKUP_MAX_AGE_DAYS
    NODE_DOWN = "node_down"  # an orchestrator node stopped beating while holding bots


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
    # What the alert is about ("crashloop:instance:5"): one open alert per key
    # (`open_key` holds it while open and is NULL once resolved; see fleet.alerting).
    key = fields.CharField(max_length=160, null=True, db_index=True)
    open_key = fields.CharField(max_length=160, null=True, unique=True)
    occurrences = fields.IntField(default=1)  # raises while open (one row, no storm)
    last_seen_at = fields.DatetimeField(null=True)
    resolved_at = fields.DatetimeField(null=True)
    # The operators' notification is owed while `notify_at` is set: when to try next (the
    # alert is its own outbox, as an order is its own delivery intent). `notified` records
    # the channels each message reached: {"raised": ["discord"], "resolved": []}.
    notify_at = fields.DatetimeField(null=True, db_index=True)
    notify_claim = fields.CharField(max_length=32, null=True)
    notify_attempts = fields.IntField(default=0)
    notify_error = fields.TextField(null=True)
    notified: fields.JSONField[dict[str, Any] | None] = fields.JSONField(null=True)

    class Meta:
        table = "alerts"


class FenceMark(Model):
    """The highest fencing token the database has seen for one instance (`fleet.fencing`):
    a write carrying a smaller token is refused in its own transaction. No foreign key: the
    mark must outlive nothing and lock nothing but itself (an id reused after a delete starts
    above the old mark, which is harmless)."""

    instance_id = fields.IntField(primary_key=True, generated=False)
    token = fields.BigIntField()
    # writes refused because a larger token was seen (each stopped a fenced-off worker)
    refused = fields.IntField(default=0)

    class Meta:
        table = "fence_marks"
