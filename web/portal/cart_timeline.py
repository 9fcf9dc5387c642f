"""The order timeline of a cart line (issue 17): what was recorded against its cart and its
cart's one payment rather than against the order itself — the cart's creation, and the refunds
of that payment that concern this line (its own line refund, a refund refused for it, the
automatic refund of a line closed before the PIX was paid, the whole cart refunded)."""

from __future__ import annotations

from typing import Any

from core.i18n import format_brl
from core.models import AuditLog
from shop.models import Order, Payment
from web.portal.context import _

MAX_EVENTS = 100


def _event(entry: AuditLog, order: Order) -> str | None:
    """The timeline text of one cart or payment audit entry for `order` (None: not its own)."""
    after = entry.after if isinstance(entry.after, dict) else {}
    if entry.action == "cart.created":
        return _(
            "portal.cart_audit.created",
            cart=order.cart_id,
            lines=len(after.get("lines") or []),
            total=format_brl(int(after.get("total_cents") or 0)),
        )
    if entry.action == "payment.refunded":
        return _("portal.cart_audit.all_refunded")
    if entry.action == "payment.auto_refund" and order.id in (after.get("order_ids") or []):
        return _("portal.cart_audit.line_auto_refunded")
    if after.get("order_id") != order.id:
        return None
    if entry.action == "payment.refund_requested":
        amount = format_brl(int(after.get("amount_cents") or 0))
        return _("portal.cart_audit.refund_requested", amount=amount)
    if entry.action == "payment.refund_refused":
        return _("portal.cart_audit.refund_refused")
    return None


async def cart_events(order: Order, tenant_id: int) -> list[dict[str, Any]]:
    """Timeline events (`at`, `what`, `who`) of a cart line; [] for a single order."""
    if order.cart_id is None:
        return []
    payment_ids = [
        str(p.id) for p in await Payment.filter(cart_id=order.cart_id, tenant_id=tenant_id)
    ]
    entries = (
        await AuditLog.filter(tenant_id=tenant_id, target_type="cart", target_id=str(order.cart_id))
        .order_by("id")
        .limit(MAX_EVENTS)
    )
    if payment_ids:
        entries += (
            await AuditLog.filter(
                tenant_id=tenant_id, target_type="payment", target_id__in=payment_ids
            )
            .order_by("id")
            .limit(MAX_EVENTS)
        )
    events = []
    for entry in entries:
        if (text := _event(entry, order)) is not None:
            events.append({"at": entry.at, "what": text, "who": entry.actor})
    return events
