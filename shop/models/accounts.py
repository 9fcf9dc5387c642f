"""Accounts (Discord users), their portal sessions, and tenants (stores)."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class AccountRole(StrEnum):
    OWNER = "owner"  # a seller: owns stores
    ADMIN = "admin"  # an operator of the platform


class Account(Model):
    id = fields.IntField(primary_key=True)
    discord_id = fields.CharField(max_length=32, unique=True)
    username = fields.CharField(max_length=100)
    avatar = fields.CharField(max_length=200, null=True)
    role = fields.CharEnumField(AccountRole, max_length=16, default=AccountRole.OWNER)
    locale = fields.CharField(max_length=8, default="pt-BR")
    blocked = fields.BooleanField(default=False)
    blocked_reason = fields.TextField(null=True)
    blocked_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    last_login_at = fields.DatetimeField(null=True)

    class Meta:
        table = "accounts"


class WebSession(Model):
    """A portal login; the cookie holds this random id, never the Discord id (revocable)."""

    id = fields.CharField(max_length=64, primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="sessions", on_delete=fields.CASCADE
    )
    account_id: int
    created_at = fields.DatetimeField(auto_now_add=True)
    last_seen_at = fields.DatetimeField(auto_now_add=True)
    revoked_at = fields.DatetimeField(null=True)
    user_agent = fields.CharField(max_length=300, default="")

    class Meta:
        table = "web_sessions"


class DeliveryMode(StrEnum):
    DM_THEN_CHANNEL = "dm_then_channel"  # DM; when DMs are closed, the channel fallback
    CHANNEL = "channel"  # always in the channel (private thread / ephemeral follow-up)


class Tenant(Model):
    """A store: one seller's catalog, bot and balance."""

    id = fields.IntField(primary_key=True)
    owner: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="tenants", on_delete=fields.RESTRICT
    )
    owner_id: int
    name = fields.CharField(max_length=100)
    guild_id = fields.CharField(max_length=32, null=True)
    sales_log_channel_id = fields.CharField(max_length=32, null=True)
    buyer_role_id = fields.CharField(max_length=32, null=True)
    # Picked in the portal from the bot's view of the server (issue 18): where tickets open
    # (private threads) and where buyers' feedback is posted.
    support_channel_id = fields.CharField(max_length=32, null=True)
    feedback_channel_id = fields.CharField(max_length=32, null=True)
    delivery_mode = fields.CharEnumField(
        DeliveryMode, max_length=24, default=DeliveryMode.DM_THEN_CHANNEL
    )
    locale = fields.CharField(max_length=8, default="pt-BR")
    low_stock_threshold = fields.IntField(default=5)
    # Unpaid (pending) orders one buyer may hold at once: each one reserves stock.
    max_open_orders_per_buyer = fields.IntField(default=2)
    # Seller notice kinds the owner turned off in the portal (shop.notify.seller: no DM).
    notices_off: fields.JSONField[list[str] | None] = fields.JSONField(null=True)
    # Ratings (issue 17, shop.ratings): hours after delivery the bot asks for stars (0: at
    # once), and how many ratings a product needs before its panel shows the average.
    rating_ask_delay_h = fields.SmallIntField(default=0)
    rating_min_count = fields.SmallIntField(default=3)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "tenants"
