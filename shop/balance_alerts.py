"""An operator alert when a refund or chargeback leaves a seller owing the platform money.

Called in the transaction that books the refund, so each booking alerts at most once (a
booking happens once: its idempotency key). Withdrawals stay blocked meanwhile
(`shop.withdrawals.request_withdrawal` refuses while the balance is negative).
"""

from __future__ import annotations

from typing import Any

from core.i18n import format_brl
from fleet.alerting import alert_key, raise_alert
from fleet.models import AlertKind
from shop import ledger

# How the operator console names what was booked (alert messages are pt-BR, like the others).
_EVENTS = {"refund": "reembolso", "partial refund": "reembolso parcial", "chargeback": "chargeback"}


async def alert_if_negative(
    tenant_id: int, payment_id: str, order_id: int | None, event: str, using_db: Any = None
) -> bool:
    """Alert when the seller's balance (available + on hold) is negative after `event` (the
    refund or chargeback just booked); True if an alert was created."""
    bal = await ledger.balance(tenant_id, using_db=using_db)
    if bal.total_cents >= 0:
        return False
    what = _EVENTS.get(event, event)
    await raise_alert(
        AlertKind.NEGATIVE_BALANCE,
        key=alert_key(AlertKind.NEGATIVE_BALANCE, f"{tenant_id}:{payment_id}:{event}"),
        tenant_id=tenant_id,
        message=(
            f"Saldo da loja #{tenant_id} negativo ({format_brl(bal.total_cents)}) após "
            f"{what} do pedido #{order_id}: saques bloqueados até ser coberto"
        ),
        details={
            "event": event,
            "payment_id": payment_id,
            "order_id": order_id,
            "balance_cents": bal.total_cents,
            "available_cents": bal.available_cents,
        },
        using_db=using_db,
    )
    return True
