"""Requests from tenants to the operators (the admin work queue)."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from shop.models.accounts import Account, Tenant


class AdminRequestKind(StrEnum):
    INSTANCE_REVIEW = "instance_review"
    UNBLOCK_APPEAL = "unblock_appeal"
    SUPPORT = "support"


class AdminRequestStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class AdminRequest(Model):
    id = fields.IntField(primary_key=True)
    kind = fields.CharEnumField(AdminRequestKind, max_length=24)
    status = fields.CharEnumField(
        AdminRequestStatus, max_length=16, default=AdminRequestStatus.OPEN, db_index=True
    )
    tenant: fields.ForeignKeyNullableRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="admin_requests", null=True, on_delete=fields.SET_NULL
    )
    tenant_id: int | None
    account: fields.ForeignKeyNullableRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="admin_requests", null=True, on_delete=fields.SET_NULL
    )
    account_id: int | None
    subject = fields.CharField(max_length=200)
    body = fields.TextField(default="")
    created_at = fields.DatetimeField(auto_now_add=True)
    resolved_at = fields.DatetimeField(null=True)
    resolved_by = fields.CharField(max_length=100, null=True)
    resolution_note = fields.TextField(null=True)

    class Meta:
        table = "admin_requests"
