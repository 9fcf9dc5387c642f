"""What the store owner is told: a `SellerNotice` row (the dashboard's list) and, unless the
owner turned the kind off, a DM from the store's own bot.

`notify_seller` only writes the row (in the caller's transaction when given one), so the
service that knows the fact never waits for Discord. `SellerDM` (in the reconciler) sends the
owed DMs over Discord's REST API with the bot's token: Create DM
(https://discord.com/developers/docs/resources/user#create-dm, `POST /users/@me/channels`
`{"recipient_id"}`) then Create Message (`POST /channels/{id}/messages`).

A bot that cannot log in cannot DM either: while the bot has an open `config_error` alert (or
the store has no bot, or it is suspended) the notice stays on the dashboard only
(`no_bot`), and the operators hear of the config error on their own channels.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from core.i18n import format_brl, t
from core.vault import TokenVault
from fleet.models import Alert, AlertKind, BotInstance
from shop.models import NoticeKind, NoticeStatus, SellerNotice, Tenant
from shop.notify.claims import claim_due

log = logging.getLogger("shop.notify.seller")

MAX_ATTEMPTS = 8
CLAIM_S = 120.0
BATCH = 200
TIMEOUT = httpx.Timeout(10.0, connect=5.0)
SELLER_KINDS = tuple(NoticeKind)


def turned_off(tenant: Tenant) -> set[str]:
    return {k for k in (tenant.notices_off or []) if k in {str(x) for x in NoticeKind}}


async def set_turned_off(tenant: Tenant, kinds: set[str]) -> None:
    """Store the kinds the owner does not want by DM (unknown names are dropped)."""
    tenant.notices_off = sorted(k for k in kinds if k in {str(x) for x in NoticeKind})
    await tenant.save(update_fields=["notices_off"])


async def notify_seller(
    tenant_id: int,
    kind: NoticeKind,
    params: dict[str, Any],
    *,
    dedupe: str | None = None,
    using_db: Any = None,
) -> SellerNotice | None:
    """Record a notice for the store owner (a DM owed unless the kind is turned off).

    `dedupe` names the fact: a second notice with the same name is dropped (None returned)."""
    query = Tenant.filter(id=tenant_id)
    if using_db is not None:
        query = query.using_db(using_db)
    tenant = await query.first()
    if tenant is None:
        return None
    off = str(kind) in turned_off(tenant)
    now = datetime.now(UTC)
    try:
        ctx = in_transaction() if using_db is None else using_db._in_transaction()
        async with ctx as conn:  # a savepoint: a duplicate rolls back this insert only
            return await SellerNotice.create(
                tenant_id=tenant_id,
                kind=kind,
                params=params,
                dedupe_key=dedupe,
                status=NoticeStatus.OFF if off else NoticeStatus.PENDING,
                send_at=None if off else now,
                using_db=conn,
            )
    except IntegrityError:
        return None


async def recent_notices(tenant_id: int, limit: int = 10) -> list[SellerNotice]:
    """The store's latest notices, newest first (the dashboard's list)."""
    return await SellerNotice.filter(tenant_id=tenant_id).order_by("-id").limit(limit)


def notice_text(notice: SellerNotice, locale: str, store: str) -> str:
    """The notice in the owner's language (amounts in reais, statuses translated)."""
    params = {k: v for k, v in (notice.params or {}).items() if isinstance(k, str)}
    params.setdefault("store", store)
    if "amount_cents" in params:
        params["amount"] = format_brl(int(params["amount_cents"]))
    if notice.kind == NoticeKind.WITHDRAWAL:
        params["status"] = t(f"notify.status.{params.get('status')}", locale)
        reason = params.get("reason") or ""
        params["reason"] = t("notify.seller.reason", locale, reason=reason) if reason else ""
    try:
        return t(f"notify.seller.{notice.kind}", locale, **params)
    except (KeyError, IndexError, ValueError):  # a notice from an older version's params
        return t(f"notify.kindname.{notice.kind}", locale)


class DMFailed(Exception):
    def __init__(
        self,
        status: NoticeStatus | None,
        message: str,
        retry_after: float = 0.0,
        http_status: int = 0,
    ):
        super().__init__(message)
        self.status = status  # None: try again later
        self.retry_after = retry_after
        self.http_status = http_status  # Discord's answer (0: none came)


class SellerDM:
    """Sends the owed notices by the store's bot; one per deployment is enough, more are safe."""

    def __init__(self, api_base: str, vault: TokenVault, client: httpx.AsyncClient) -> None:
        self.api_base = api_base.rstrip("/")
        self.vault = vault
        self.client = client

    async def _claim(self, now: datetime) -> list[SellerNotice]:
        return await claim_due(SellerNotice, "send_at", "claim", now, batch=BATCH, hold_s=CLAIM_S)

    async def run_once(self, now: datetime | None = None) -> int:
        """Send the owed DMs; returns how many were sent."""
        now = now or datetime.now(UTC)
        sent = 0
        for notice in await self._claim(now):
            status, error, retry = await self._deliver(notice)
            values: dict[str, Any] = {"claim": None, "last_error": error}
            if status is None:
                attempts = notice.attempts + 1
                if attempts >= MAX_ATTEMPTS:
                    values.update(status=NoticeStatus.FAILED, send_at=None, attempts=attempts)
                else:
                    wait = max(min(15 * 2 ** (attempts - 1), 3600), retry)
                    values.update(send_at=now + timedelta(seconds=wait), attempts=attempts)
            else:
                values.update(status=status, send_at=None)
                if status == NoticeStatus.SENT:
                    values["sent_at"] = now
                    sent += 1
            await SellerNotice.filter(id=notice.id, claim=notice.claim).update(**values)
        return sent

    async def _deliver(self, notice: SellerNotice) -> tuple[NoticeStatus | None, str | None, float]:
        tenant = await Tenant.get_or_none(id=notice.tenant_id).prefetch_related("owner")
        if tenant is None:
            return NoticeStatus.FAILED, "store deleted", 0.0
        if str(notice.kind) in turned_off(tenant):
            return NoticeStatus.OFF, None, 0.0
        bot = await BotInstance.filter(tenant_id=tenant.id, suspended=False).order_by("id").first()
        if (
            bot is None
            or await Alert.filter(open_key=f"{AlertKind.CONFIG_ERROR}:instance:{bot.id}").exists()
        ):
            return NoticeStatus.NO_BOT, "the bot cannot log in", 0.0
        text = notice_text(notice, tenant.owner.locale or tenant.locale, tenant.name)
        try:
            await self._dm(
                self.vault.decrypt(bot.token_enc).reveal(), tenant.owner.discord_id, text
            )
        except DMFailed as exc:
            return exc.status, str(exc)[:500], exc.retry_after
        return NoticeStatus.SENT, None, 0.0

    async def _post(self, token: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self.request("POST", token, path, body)

    async def request(
        self, method: str, token: str, path: str, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """One call to Discord's REST API as the bot; `DMFailed` says whether to retry."""
        try:
            response = await self.client.request(
                method,
                f"{self.api_base}{path}",
                json=body,
                headers={"Authorization": f"Bot {token}"},
                timeout=TIMEOUT,
            )
        except httpx.HTTPError as exc:
            raise DMFailed(None, f"{type(exc).__name__}: {exc}") from exc
        if response.status_code == 401:  # the token no longer works
            raise DMFailed(NoticeStatus.NO_BOT, "401 Unauthorized")
        if response.status_code == 403:  # 50007: the owner does not take DMs from the bot
            raise DMFailed(NoticeStatus.FAILED, f"403 {response.text[:200]}")
        if response.status_code == 429:
            try:
                retry = float(response.json().get("retry_after", 5))
            except (ValueError, AttributeError, TypeError):
                retry = 5.0
            raise DMFailed(None, "429 rate limited", retry)
        if response.status_code >= 500:
            raise DMFailed(None, f"HTTP {response.status_code}")
        if not response.is_success:
            raise DMFailed(
                NoticeStatus.FAILED,
                f"HTTP {response.status_code} {response.text[:200]}",
                http_status=response.status_code,
            )
        if not response.content:  # 204 No Content (a DELETE)
            return {}
        data = response.json()
        return data if isinstance(data, dict) else {}

    async def _dm(self, token: str, user_id: str, text: str) -> None:
        channel = await self._post(token, "/users/@me/channels", {"recipient_id": user_id})
        await self._post(
            token,
            f"/channels/{channel.get('id')}/messages",
            {"content": text[:2000], "allowed_mentions": {"parse": []}},
        )


async def notify_refund(payment: Any, booked: str, conn: Any) -> None:
    """The owner hears of a refund or chargeback booked against their store (`booked`:
    "refund", "partial refund", "chargeback"), in the booking's transaction."""
    kind = NoticeKind.CHARGEBACK if booked == "chargeback" else NoticeKind.REFUND
    amount = payment.refunded_cents if booked == "partial refund" else payment.amount_cents
    await notify_seller(
        payment.tenant_id,
        kind,
        {"order_id": payment.order_id, "amount_cents": int(amount or 0)},
        dedupe=f"{kind}:{payment.id}:{int(amount or 0)}",
        using_db=conn,
    )
