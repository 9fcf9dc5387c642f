"""Prices and coupons, in integer centavos.

A coupon is percent (value in basis points, 1000 = 10 %) or fixed (value in centavos), may
expire, may have a use limit, a minimum order and a list of products it is bound to (empty:
every product). A use is counted when an order is created with it (a conditional UPDATE, so
two buyers never both take the last use). The discount never brings a total below R$ 0,01:
a PIX charge must be positive.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from tortoise.expressions import F

from core.i18n import format_brl
from shop.errors import ShopError
from shop.models import Coupon, CouponKind, Product

MIN_TOTAL_CENTS = 1


class CouponRejected(ShopError):
    """The code cannot be used for this order."""

    code = "coupon_invalid"
    message_key = "storefront.error.coupon_invalid"


class CouponExpired(CouponRejected):
    code = "coupon_expired"
    message_key = "storefront.error.coupon_expired"


class CouponUsedUp(CouponRejected):
    code = "coupon_used_up"
    message_key = "storefront.error.coupon_used_up"


class CouponBelowMinimum(CouponRejected):
    code = "coupon_minimum"
    message_key = "storefront.error.coupon_minimum"


class CouponNotForProduct(CouponRejected):
    code = "coupon_not_for_product"
    message_key = "storefront.error.coupon_not_for_product"


@dataclass(frozen=True)
class Quote:
    unit_price_cents: int
    quantity: int
    subtotal_cents: int
    discount_cents: int
    total_cents: int
    coupon_code: str | None = None


def discount_for(kind: CouponKind | str, value: int, subtotal_cents: int) -> int:
    """The discount a coupon gives on `subtotal_cents` (floor for percent; capped)."""
    if kind == CouponKind.PERCENT:
        raw = subtotal_cents * max(0, min(int(value), 10_000)) // 10_000
    else:
        raw = max(0, int(value))
    return max(0, min(raw, subtotal_cents - MIN_TOTAL_CENTS))


def quote(unit_price_cents: int, quantity: int, coupon: Coupon | None = None) -> Quote:
    """Subtotal, discount and total for `quantity` units at `unit_price_cents`."""
    subtotal = unit_price_cents * quantity
    discount = discount_for(coupon.kind, coupon.value, subtotal) if coupon else 0
    return Quote(
        unit_price_cents,
        quantity,
        subtotal,
        discount,
        subtotal - discount,
        coupon.code if coupon else None,
    )


def normalize_code(raw: str | None) -> str | None:
    code = (raw or "").strip()
    return code[:40] or None


async def find_coupon(
    tenant_id: int,
    code: str,
    product_id: int | None,
    subtotal_cents: int,
    *,
    now: datetime | None = None,
    using_db: Any = None,
) -> Coupon:
    """The coupon `code` if it applies to this order now; raises a `CouponRejected`.
    `product_id` None (a cart, shop.cart_pricing) skips the bound-products check."""
    now = now or datetime.now(UTC)
    query = Coupon.filter(tenant_id=tenant_id, code__iexact=code, active=True)
    if using_db is not None:
        query = query.using_db(using_db)
    coupon = await query.first()
    if coupon is None:
        raise CouponRejected(f"no coupon {code!r}", code=code)
    if coupon.expires_at is not None and coupon.expires_at <= now:
        raise CouponExpired(f"coupon {code} expired", code=coupon.code)
    if coupon.max_uses is not None and coupon.uses >= coupon.max_uses:
        raise CouponUsedUp(f"coupon {code} used up", code=coupon.code)
    if subtotal_cents < coupon.min_order_cents:
        raise CouponBelowMinimum(
            f"order below {coupon.min_order_cents}",
            code=coupon.code,
            minimum=format_brl(coupon.min_order_cents),
        )
    bound_ids = await bound_product_ids(coupon.id, using_db)
    if bound_ids and product_id is not None and product_id not in bound_ids:
        raise CouponNotForProduct(f"coupon {code} not for product {product_id}", code=coupon.code)
    return coupon


async def bound_product_ids(coupon_id: int, using_db: Any = None) -> set[int]:
    """The products a coupon is bound to (empty: every product)."""
    bound = Product.filter(coupons__id=coupon_id)
    if using_db is not None:
        bound = bound.using_db(using_db)
    # tortoise types values_list(flat=True) as list[tuple]; it is a list of the values.
    return set(cast(list[int], await bound.values_list("id", flat=True)))


async def claim_use(coupon: Coupon, using_db: Any) -> None:
    """Count one use, unless the last one was just taken (then `CouponUsedUp`)."""
    query = Coupon.filter(id=coupon.id)
    if coupon.max_uses is not None:
        query = query.filter(uses__lt=coupon.max_uses)
    updated = await query.using_db(using_db).update(uses=F("uses") + 1)
    if not updated:
        raise CouponUsedUp(f"coupon {coupon.code} used up", code=coupon.code)
