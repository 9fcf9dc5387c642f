"""A store's Mercado Pago connection: connect (tokens from OAuth, encrypted with the vault),
switch between platform-collected and connected (each switch recorded), disconnect, and the
scheduled token refresh (one node per token: refresh tokens are single use).

Money already on the ledger when a store switches stays there and stays withdrawable: the
switch only decides where *new* charges are paid (`shop.payments.connected_gateway`).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from core import audit
from core.vault import SecretToken, TokenVault, VaultError
from shop.models import MoneyMode, MoneyModeChange, MPConnection
from shop.payments.mp_oauth import Grant, MercadoPagoOAuth, MPOAuthError

log = logging.getLogger(__name__)
REFRESH_LEASE = timedelta(minutes=2)


async def active_connection(tenant_id: int, using_db: Any = None) -> MPConnection | None:
    """The store's connection when it is in connected mode with usable tokens, else None."""
    return (
        await MPConnection.filter(
            tenant_id=tenant_id, money_mode=MoneyMode.CONNECTED, disconnected_at__isnull=True
        )
        .using_db(using_db)
        .first()
    )


async def money_mode(tenant_id: int) -> MoneyMode:
    """Platform-collected unless the store is connected now."""
    return MoneyMode.CONNECTED if await active_connection(tenant_id) else MoneyMode.PLATFORM


async def _switch(
    conn_row: MPConnection, to: MoneyMode, actor: str, reason: str, using_db: Any
) -> None:
    before = MoneyMode(conn_row.money_mode)
    if before == to:
        return
    conn_row.money_mode = to
    await MoneyModeChange.create(
        tenant_id=conn_row.tenant_id,
        from_mode=before,
        to_mode=to,
        actor=actor[:64],
        reason=reason[:200],
        mp_user_id=conn_row.mp_user_id,
        using_db=using_db,
    )
    await audit.record(
        actor,
        "store.money_mode",
        "tenant",
        conn_row.tenant_id,
        tenant_id=conn_row.tenant_id,
        before={"money_mode": str(before)},
        after={"money_mode": str(to), "mp_user_id": conn_row.mp_user_id, "reason": reason},
        using_db=using_db,
    )


async def connect(vault: TokenVault, tenant_id: int, grant: Grant, actor: str) -> MPConnection:
    """Store the seller's tokens (encrypted) and switch the store to connected."""
    now = datetime.now(UTC)
    fields = {
        "mp_user_id": grant.user_id,
        "access_token_enc": vault.encrypt(grant.access_token),
        "refresh_token_enc": vault.encrypt(grant.refresh_token),
        "public_key": grant.public_key,
        "scopes": grant.scope,
        "live_mode": grant.live_mode,
        "expires_at": grant.expires_at,
        "connected_at": now,
        "refreshed_at": None,
        "disconnected_at": None,
        "refresh_error": "",
    }
    async with in_transaction() as db:
        row = (
            await MPConnection.filter(tenant_id=tenant_id).using_db(db).select_for_update().first()
        )
        if row is None:
            row = await MPConnection.create(tenant_id=tenant_id, using_db=db, **fields)
        else:
            await row.update_from_dict(fields).save(using_db=db)
        await audit.record(
            actor,
            "mercadopago.connected",
            "tenant",
            tenant_id,
            tenant_id=tenant_id,
            after={"mp_user_id": grant.user_id, "live_mode": grant.live_mode, "scope": grant.scope},
            using_db=db,
        )
        await _switch(row, MoneyMode.CONNECTED, actor, "mercadopago connected", db)
        await row.save(using_db=db)
    return row


async def disconnect(
    tenant_id: int, actor: str, reason: str = "disconnected by the seller"
) -> bool:
    """Forget the seller's tokens and switch the store back to platform-collected. Mercado Pago
    has no revoke endpoint for applications: the seller also revokes it in their account."""
    async with in_transaction() as db:
        row = (
            await MPConnection.filter(tenant_id=tenant_id).using_db(db).select_for_update().first()
        )
        if row is None or row.disconnected_at is not None:
            return False
        row.access_token_enc = ""
        row.refresh_token_enc = ""
        row.disconnected_at = datetime.now(UTC)
        await _switch(row, MoneyMode.PLATFORM, actor, reason, db)
        await row.save(using_db=db)
        await audit.record(
            actor,
            "mercadopago.disconnected",
            "tenant",
            tenant_id,
            tenant_id=tenant_id,
            before={"mp_user_id": row.mp_user_id},
            after={"reason": reason},
            using_db=db,
        )
    return True


def access_token(vault: TokenVault, row: MPConnection) -> SecretToken:
    """The seller's access token (never logged: `SecretToken` hides itself)."""
    return vault.decrypt(row.access_token_enc)


async def _claim(row_id: int, now: datetime) -> bool:
    """Take the refresh lease with one conditional UPDATE: exactly one node wins it."""
    claimed = await MPConnection.filter(
        Q(id=row_id),
        Q(refresh_claimed_until__isnull=True) | Q(refresh_claimed_until__lt=now),
    ).update(refresh_claimed_until=now + REFRESH_LEASE)
    return claimed == 1


async def refresh_connection(
    oauth: MercadoPagoOAuth, vault: TokenVault, row: MPConnection, now: datetime
) -> bool:
    """Renew one connection's tokens if this node wins its lease; True when renewed."""
    if not await _claim(row.id, now):
        return False
    try:
        grant = await oauth.refresh(vault.decrypt(row.refresh_token_enc))
    except (MPOAuthError, VaultError) as exc:
        log.warning("mercadopago token refresh for store %s failed: %s", row.tenant_id, exc)
        await MPConnection.filter(id=row.id).update(refresh_error=str(exc)[:200])
        return False
    await MPConnection.filter(id=row.id, disconnected_at__isnull=True).update(
        access_token_enc=vault.encrypt(grant.access_token),
        refresh_token_enc=vault.encrypt(grant.refresh_token),
        expires_at=grant.expires_at,
        refreshed_at=datetime.now(UTC),
        refresh_error="",
        scopes=grant.scope,
        refresh_claimed_until=None,
    )
    await audit.record(
        "system:reconciler",
        "mercadopago.token_refreshed",
        "tenant",
        row.tenant_id,
        tenant_id=row.tenant_id,
        after={"expires_at": grant.expires_at.isoformat()},
    )
    return True


async def refresh_due(
    oauth: MercadoPagoOAuth,
    vault: TokenVault,
    before: timedelta,
    now: datetime | None = None,
    batch: int = 50,
) -> int:
    """Renew the tokens expiring within `before` (a reconciler pass); returns how many."""
    now = now or datetime.now(UTC)
    due = (
        await MPConnection.filter(
            Q(disconnected_at__isnull=True),
            Q(expires_at__lte=now + before),
            Q(refresh_claimed_until__isnull=True) | Q(refresh_claimed_until__lt=now),
        )
        .order_by("expires_at")
        .limit(batch)
    )
    renewed = 0
    for row in due:
        renewed += await refresh_connection(oauth, vault, row, now)
    return renewed
