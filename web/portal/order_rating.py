"""The buyer's rating on the portal's order page (issue 17): stars, comment and the store's
reply, read through `shop.ratings`; replying stays on the product's ratings page."""

from __future__ import annotations

from typing import Any

from shop.models import Order
from shop.ratings import rating_of_order, stars_text


async def rating_context(order: Order) -> dict[str, Any]:
    """What `_order_rating.html` shows: the order's rating (or None) and its stars."""
    rating = await rating_of_order(order.tenant_id, order.id)
    return {"rating": rating, "rating_stars": stars_text(rating.stars) if rating else ""}
