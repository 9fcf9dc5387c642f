"""The audit log: who did what to which object, before and after."""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model


class AuditLog(Model):
    id = fields.BigIntField(primary_key=True)
    at = fields.DatetimeField(auto_now_add=True, db_index=True)
    actor = fields.CharField(max_length=100)  # admin:<token label> | account:<id> | system:<x>
    action = fields.CharField(max_length=60, db_index=True)
    target_type = fields.CharField(max_length=40)
    target_id = fields.CharField(max_length=64)
    tenant_id = fields.IntField(null=True, db_index=True)
    before: fields.JSONField[Any] = fields.JSONField(null=True)
    after: fields.JSONField[Any] = fields.JSONField(null=True)

    class Meta:
        table = "audit_log"
