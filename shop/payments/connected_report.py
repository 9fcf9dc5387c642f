"""What connected stores sold (no ledger: the money went to the sellers' own Mercado Pago
accounts) and the platform fee Mercado Pago moved to the platform for those sales."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from tortoise.functions import Count, Sum

from shop.models import ConnectedCharge, MoneyMode, MoneyModeChange, MPConnection
from shop.payments.connected import money_mode
from shop.states import PaymentStatus


@dataclass(frozen=True)
class ConnectedTotals:
    """Sales paid into sellers' accounts: count, gross, marketplace fee earned, refunded."""

    sales: int
    gross_cents: int
    fee_cents: int
    refunded_cents: int

    @property
    def received_cents(self) -> int:
        """What stayed in the seller's account: sold, less the platform fee and refunds."""
        return self.gross_cents - self.fee_cents - self.refunded_cents


async def connected_totals(
    tenant_id: int | None = None, since: datetime | None = None
) -> ConnectedTotals:
    """Totals of connected sales (one store, or every store), optionally since a moment.
    The fee of a fully refunded sale is not counted: Mercado Pago returns it."""
    qs = ConnectedCharge.filter(sold_at__isnull=False)
    if tenant_id is not None:
        qs = qs.filter(tenant_id=tenant_id)
    if since is not None:
        qs = qs.filter(sold_at__gte=since)
    rows = (
        await qs.annotate(n=Count("id"), gross=Sum("amount_cents"), fee=Sum("fee_cents"))
        .group_by("payment__status")
        .values("payment__status", "n", "gross", "fee")
    )
    refunded_qs = qs.filter(payment__refunded_cents__gt=0)
    refunded = cast(
        list[int | None],
        await refunded_qs.annotate(r=Sum("payment__refunded_cents")).values_list("r", flat=True),
    )
    reversed_ = {PaymentStatus.REFUNDED.value, PaymentStatus.CHARGED_BACK.value}
    return ConnectedTotals(
        sales=sum(int(r["n"] or 0) for r in rows),
        gross_cents=sum(int(r["gross"] or 0) for r in rows),
        fee_cents=sum(int(r["fee"] or 0) for r in rows if r["payment__status"] not in reversed_),
        refunded_cents=int(refunded[0] or 0) if refunded else 0,
    )


async def connected_money(tenant_id: int) -> ConnectedTotals | None:
    """The store's connected-sales totals while it is connected, else None (platform-collected:
    its money is the ledger balance)."""
    if await money_mode(tenant_id) != MoneyMode.CONNECTED:
        return None
    return await connected_totals(tenant_id)


async def store_overview(tenant_id: int) -> dict[str, Any]:
    """The portal's view: connection, switches, recent connected sales and totals."""
    return {
        "connection": await MPConnection.get_or_none(tenant_id=tenant_id),
        "changes": await MoneyModeChange.filter(tenant_id=tenant_id).order_by("-id").limit(20),
        "sales": await ConnectedCharge.filter(tenant_id=tenant_id, sold_at__isnull=False)
        .order_by("-id")
        .limit(50)
        .prefetch_related("payment"),
        "totals": await connected_totals(tenant_id),
    }
