"""A coupon on a cart (issue 17), with today's rules (`shop.pricing`): a coupon bound to
products only discounts those lines, its minimum is checked against the cart's subtotal, and
a use is counted once per cart. The discount is computed on the eligible lines' subtotal
(`pricing.discount_for`) and split over them in integer centavos: each eligible line gets
its share rounded down, the remainder goes to the last eligible line (spilling back to the
previous ones only if that line cannot take it all), so the lines' discounts always sum to
the cart's and no line is discounted below R$ 0,00.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shop import pricing
from shop.models import Coupon


@dataclass(frozen=True)
class PricedLine:
    product_id: int
    unit_price_cents: int
    quantity: int

    @property
    def subtotal_cents(self) -> int:
        return self.unit_price_cents * self.quantity


@dataclass(frozen=True)
class CartQuote:
    subtotal_cents: int
    discount_cents: int
    total_cents: int
    line_discounts: list[int]  # one per line, in the lines' order
    coupon: Coupon | None = None

    def line_total(self, index: int, line: PricedLine) -> int:
        return line.subtotal_cents - self.line_discounts[index]


def split_discount(subtotals: list[int], eligible: list[bool], discount: int) -> list[int]:
    """`discount` over the eligible lines in proportion to their subtotals (see module doc)."""
    base = sum(s for s, ok in zip(subtotals, eligible, strict=True) if ok)
    shares = [0] * len(subtotals)
    if discount <= 0 or base <= 0:
        return shares
    discount = min(discount, base)
    for i, (sub, ok) in enumerate(zip(subtotals, eligible, strict=True)):
        if ok:
            shares[i] = discount * sub // base
    left = discount - sum(shares)
    for i in reversed(range(len(subtotals))):  # remainder: last eligible line first
        if left <= 0:
            break
        if eligible[i]:
            take = min(left, subtotals[i] - shares[i])
            shares[i] += take
            left -= take
    return shares


def quote_cart(lines: list[PricedLine], coupon: Coupon | None, bound: set[int]) -> CartQuote:
    """Totals of `lines` with `coupon` (bound to `bound` products; empty: every product)."""
    subtotals = [line.subtotal_cents for line in lines]
    subtotal = sum(subtotals)
    if coupon is None:
        return CartQuote(subtotal, 0, subtotal, [0] * len(lines))
    eligible = [not bound or line.product_id in bound for line in lines]
    eligible_subtotal = sum(s for s, ok in zip(subtotals, eligible, strict=True) if ok)
    discount = pricing.discount_for(coupon.kind, coupon.value, eligible_subtotal)
    shares = split_discount(subtotals, eligible, discount)
    return CartQuote(subtotal, discount, subtotal - discount, shares, coupon)


async def find_cart_coupon(
    tenant_id: int,
    code: str,
    lines: list[PricedLine],
    *,
    now: datetime | None = None,
    using_db: Any = None,
) -> tuple[Coupon, set[int]]:
    """The coupon `code` if it applies to this cart now, with the products it is bound to;
    raises a `CouponRejected` (`CouponNotForProduct` when no line is one of them)."""
    subtotal = sum(line.subtotal_cents for line in lines)
    coupon = await pricing.find_coupon(tenant_id, code, None, subtotal, now=now, using_db=using_db)
    bound = await pricing.bound_product_ids(coupon.id, using_db)
    if bound and not any(line.product_id in bound for line in lines):
        raise pricing.CouponNotForProduct(f"coupon {code} not for this cart", code=coupon.code)
    return coupon, bound
