"""Accounts: list, block (stops the owner's bots, logs out their sessions), unblock."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from pydantic import BaseModel, Field
from quart import Blueprint, current_app
from quart_schema import tag, validate_querystring, validate_response
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from core import audit
from fleet.control_protocol import mark_dirty
from fleet.models import BotInstance
from shop.models import Account, AccountRole, Tenant, WebSession
from web.admin.api import (
    ActionReason,
    ErrorBody,
    PageInfo,
    PageQuery,
    actor,
    error,
    iso,
    json_body,
)

bp = Blueprint("accounts", __name__)


class AccountsQuery(PageQuery):
    blocked: bool | None = None
    role: AccountRole | None = None
    q: str | None = Field(default=None, max_length=100, description="username or Discord id")


class AccountOut(BaseModel):
    id: int
    discord_id: str
    username: str
    role: AccountRole
    locale: str
    blocked: bool
    blocked_reason: str | None
    blocked_at: str | None
    created_at: str | None
    last_login_at: str | None
    tenant_ids: list[int]


class AccountsOut(BaseModel):
    items: list[AccountOut]
    page: PageInfo


class BlockOut(AccountOut):
    """The account after the change, and what the change did."""

    sessions_revoked: int
    instances_marked: list[int]


async def account_json(a: Account) -> dict[str, Any]:
    tenant_ids = await Tenant.filter(owner_id=a.id).order_by("id").values_list("id", flat=True)
    return {
        "id": a.id,
        "discord_id": a.discord_id,
        "username": a.username,
        "role": str(a.role),
        "locale": a.locale,
        "blocked": a.blocked,
        "blocked_reason": a.blocked_reason,
        "blocked_at": iso(a.blocked_at),
        "created_at": iso(a.created_at),
        "last_login_at": iso(a.last_login_at),
        "tenant_ids": list(tenant_ids),
    }


async def _page(args: AccountsQuery) -> dict[str, Any]:
    query = Account.all()
    if args.blocked is not None:
        query = query.filter(blocked=args.blocked)
    if args.role is not None:
        query = query.filter(role=args.role)
    if args.q and args.q.strip():
        text = args.q.strip()
        cond = Q(username__icontains=text)
        if len(text) <= 32:  # a Discord snowflake; longer cannot match the column
            cond |= Q(discord_id=text)
        query = query.filter(cond)
    total = await query.count()
    order = ("-blocked_at", "id") if args.blocked else ("id",)
    rows = await query.order_by(*order).offset(args.offset).limit(args.limit)
    return {
        "items": [await account_json(a) for a in rows],
        "page": {"total": total, "limit": args.limit, "offset": args.offset},
    }


@bp.get("/api/accounts")
@tag(["accounts"])
@validate_querystring(AccountsQuery)
@validate_response(AccountsOut)
async def list_accounts(query_args: AccountsQuery):
    """Accounts, filtered by blocked, role or a search."""
    return await _page(query_args)


@bp.get("/api/accounts/blocked")
@tag(["accounts"])
@validate_querystring(PageQuery)
@validate_response(AccountsOut)
async def blocked_accounts(query_args: PageQuery):
    """Blocked accounts, most recently blocked first, with the reason."""
    return await _page(
        AccountsQuery(blocked=True, limit=query_args.limit, offset=query_args.offset)
    )


async def set_blocked(
    account_id: int, blocked: bool, reason: str, who: str
) -> dict[str, Any] | None:
    """Block or unblock; blocking revokes the web sessions. Marks the owner's bots dirty so
    the orchestrator stops (or restarts) them within seconds."""
    now = datetime.now(UTC)
    async with in_transaction() as conn:
        account = await Account.filter(id=account_id).using_db(conn).select_for_update().first()
        if account is None:
            return None
        before = {"blocked": account.blocked, "blocked_reason": account.blocked_reason}
        account.blocked = blocked
        # tortoise types every TextField as str, null=True ones too
        account.blocked_reason = reason if blocked else None  # type: ignore[assignment]
        account.blocked_at = now if blocked else None
        await account.save(using_db=conn, update_fields=["blocked", "blocked_reason", "blocked_at"])
        revoked = 0
        if blocked:
            revoked = (
                await WebSession.filter(account_id=account_id, revoked_at__isnull=True)
                .using_db(conn)
                .update(revoked_at=now)
            )
        tenant_ids = (
            await Tenant.filter(owner_id=account_id).using_db(conn).values_list("id", flat=True)
        )
        # tortoise types values_list(flat=True) as list[tuple]; it is a list of the values.
        instance_ids = cast(
            list[int],
            await BotInstance.filter(tenant_id__in=list(tenant_ids))
            .using_db(conn)
            .values_list("id", flat=True),
        )
        await audit.record(
            who,
            "account.blocked" if blocked else "account.unblocked",
            "account",
            account_id,
            before=before,
            after={
                "blocked": blocked,
                "reason": reason,
                "sessions_revoked": revoked,
                "instances": instance_ids,
            },
            using_db=conn,
        )
    await mark_dirty(current_app.config["REDIS"], *instance_ids)
    return {
        **await account_json(account),
        "sessions_revoked": int(revoked or 0),
        "instances_marked": instance_ids,
    }


@bp.post("/api/accounts/<int:account_id>/block")
@tag(["accounts"])
@json_body(ActionReason)
@validate_response(BlockOut)
@validate_response(ErrorBody, 404)
async def block(account_id: int, data: ActionReason):
    """Block an account: its bots stop within seconds and its portal sessions end."""
    body = await set_blocked(account_id, True, data.reason.strip() or data.reason, actor())
    return body if body is not None else error(404, "not_found", f"no account {account_id}")


@bp.post("/api/accounts/<int:account_id>/unblock")
@tag(["accounts"])
@json_body(ActionReason)
@validate_response(BlockOut)
@validate_response(ErrorBody, 404)
async def unblock(account_id: int, data: ActionReason):
    """Unblock an account (with the reason, for the audit log); its bots may start again."""
    body = await set_blocked(account_id, False, data.reason.strip() or data.reason, actor())
    return body if body is not None else error(404, "not_found", f"no account {account_id}")
