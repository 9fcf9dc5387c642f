"""`low_stock`: raised where stock is spent (a delivery), resolved by `shop.notify.checks`
once a restock brings it back to the store's threshold."""

from __future__ import annotations

import logging

from fleet.alerting import alert_key, raise_alert
from fleet.models import AlertKind
from shop import stock
from shop.models import Variation

log = logging.getLogger("shop.notify")


async def watch_low_stock(variation_id: int) -> bool:
    """Raise `low_stock` when the variation's available items fell under its store's
    `low_stock_threshold` (0 turns it off); True if it is low. Never raises: a delivery must
    not fail for an alert."""
    try:
        variation = await Variation.get_or_none(id=variation_id).prefetch_related(
            "tenant", "product"
        )
        if variation is None or variation.tenant.low_stock_threshold <= 0:
            return False
        threshold = variation.tenant.low_stock_threshold
        available = (await stock.counts([variation_id]))[variation_id]["available"]
        if available >= threshold:
            return False
        await raise_alert(
            AlertKind.LOW_STOCK,
            f"{variation.product.name} — {variation.name}: {available} available "
            f"(threshold {threshold})",
            key=alert_key(AlertKind.LOW_STOCK, f"variation:{variation_id}"),
            tenant_id=variation.tenant_id,
            details={
                "variation_id": variation_id,
                "product": variation.product.name,
                "variation": variation.name,
                "available": available,
                "threshold": threshold,
            },
        )
        return True
    except Exception:  # noqa: BLE001 - logged; the sale goes on
        log.exception("low stock check of variation %s failed", variation_id)
        return False
