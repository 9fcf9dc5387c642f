"""A buyer's open cart in one store (issue 17): the lines picked from the panels, before
paying. At most `MAX_CART_LINES` variations, each with a quantity bounded like checkout's
(`shop.checkout.check_quantity`). Nothing is reserved here: `view` shows, for every line, what
can be bought now and the `problem` a line would hit at checkout ("unavailable",
"out_of_stock", "not_enough"), so a line that cannot be reserved is seen before paying.
Paying is `shop.cart_checkout`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tortoise.exceptions import IntegrityError

from shop import cart_pricing, pricing
from shop.checkout import Offer, ProductUnavailable, check_quantity, sellable
from shop.errors import ShopError
from shop.kinds import NotDeliverable
from shop.models import CartLine, Variation

MAX_CART_LINES = 10


class CartFull(ShopError):
    """The cart already holds `MAX_CART_LINES` different variations."""

    code = "cart_full"
    message_key = "storefront.error.cart_full"


class CartEmpty(ShopError):
    """Checkout of a cart without lines."""

    code = "cart_empty"
    message_key = "storefront.error.cart_empty"


@dataclass(frozen=True)
class CartViewLine:
    variation_id: int
    product_id: int
    product_name: str
    variation_name: str
    quantity: int
    unit_price_cents: int
    line_total_cents: int  # after its share of the discount
    discount_cents: int
    available: int
    problem: str | None = None  # unavailable | out_of_stock | not_enough | invalid_quantity


@dataclass(frozen=True)
class CartView:
    lines: list[CartViewLine]
    subtotal_cents: int
    discount_cents: int
    total_cents: int
    coupon_error: str | None = None  # the CouponRejected's code (coupon_expired…)
    coupon_code: str | None = None  # the coupon applied, as the store wrote it
    coupon_exc: ShopError | None = field(default=None, compare=False, repr=False)

    @property
    def empty(self) -> bool:
        return not self.lines

    @property
    def ok(self) -> bool:
        """Every line can be reserved now (checkout would not refuse one)."""
        return bool(self.lines) and all(line.problem is None for line in self.lines)

    def coupon_message(self, locale: str | None = None) -> str | None:
        """Why the coupon was refused, in `locale` (None when it was not)."""
        return self.coupon_exc.message(locale) if self.coupon_exc else None


def _problem(offer: Offer | None, quantity: int) -> str | None:
    if offer is None:
        return "unavailable"
    try:
        check_quantity(offer, quantity)
    except ShopError:
        return "invalid_quantity"
    if offer.available <= 0:
        return "out_of_stock"
    if offer.available < quantity:
        return "not_enough"
    return None


async def _offer(tenant_id: int, variation_id: int) -> Offer | None:
    try:
        return await sellable(tenant_id, variation_id)
    except (ProductUnavailable, NotDeliverable):
        return None


async def lines_of(tenant_id: int, buyer_id: str) -> list[CartLine]:
    """The buyer's cart lines in this store, oldest first."""
    return (
        await CartLine.filter(tenant_id=tenant_id, buyer_discord_id=buyer_id)
        .order_by("added_at", "id")
        .all()
    )


async def add_line(tenant_id: int, buyer_id: str, variation_id: int, quantity: int) -> CartView:
    """Put `quantity` of a variation in the cart (sets it if the line is there already).

    Raises `ProductUnavailable` (not for sale), `InvalidQuantity` or `CartFull`.
    """
    offer = await sellable(tenant_id, variation_id)
    check_quantity(offer, quantity)
    updated = await CartLine.filter(
        tenant_id=tenant_id, buyer_discord_id=buyer_id, variation_id=variation_id
    ).update(quantity=quantity)
    if not updated:
        count = await CartLine.filter(tenant_id=tenant_id, buyer_discord_id=buyer_id).count()
        if count >= MAX_CART_LINES:
            raise CartFull(f"{count} lines", maximum=MAX_CART_LINES)
        try:
            await CartLine.create(
                tenant_id=tenant_id,
                buyer_discord_id=buyer_id,
                variation_id=variation_id,
                quantity=quantity,
            )
        except IntegrityError:  # a double click added it meanwhile: set the quantity
            await CartLine.filter(
                tenant_id=tenant_id, buyer_discord_id=buyer_id, variation_id=variation_id
            ).update(quantity=quantity)
    return await view(tenant_id, buyer_id)


async def remove_line(tenant_id: int, buyer_id: str, variation_id: int) -> CartView:
    await CartLine.filter(
        tenant_id=tenant_id, buyer_discord_id=buyer_id, variation_id=variation_id
    ).delete()
    return await view(tenant_id, buyer_id)


async def clear(tenant_id: int, buyer_id: str) -> None:
    await CartLine.filter(tenant_id=tenant_id, buyer_discord_id=buyer_id).delete()


async def view(tenant_id: int, buyer_id: str, coupon_code: str | None = None) -> CartView:
    """The cart as checkout would price it now, each line with its `problem` (if any)."""
    rows = await lines_of(tenant_id, buyer_id)
    variations = {
        v.id: v
        for v in await Variation.filter(
            id__in=[r.variation_id for r in rows], tenant_id=tenant_id
        ).prefetch_related("product")
    }
    offers = {r.variation_id: await _offer(tenant_id, r.variation_id) for r in rows}
    shown = [r for r in rows if r.variation_id in variations]
    priced = [
        cart_pricing.PricedLine(
            variations[r.variation_id].product_id,
            variations[r.variation_id].price_cents,
            r.quantity,
        )
        for r in shown
    ]
    coupon_exc: ShopError | None = None
    coupon = None
    bound: set[int] = set()
    code = pricing.normalize_code(coupon_code)
    if code and priced:
        try:
            coupon, bound = await cart_pricing.find_cart_coupon(tenant_id, code, priced)
        except pricing.CouponRejected as exc:
            coupon_exc = exc
    q = cart_pricing.quote_cart(priced, coupon, bound)
    lines = []
    for i, (row, p) in enumerate(zip(shown, priced, strict=True)):
        v = variations[row.variation_id]
        offer = offers[row.variation_id]
        lines.append(
            CartViewLine(
                variation_id=v.id,
                product_id=v.product_id,
                product_name=v.product.name,
                variation_name=v.name,
                quantity=row.quantity,
                unit_price_cents=v.price_cents,
                line_total_cents=q.line_total(i, p),
                discount_cents=q.line_discounts[i],
                available=offer.available if offer else 0,
                problem=_problem(offer, row.quantity),
            )
        )
    return CartView(
        lines,
        q.subtotal_cents,
        q.discount_cents,
        q.total_cents,
        coupon_error=coupon_exc.code if coupon_exc else None,
        coupon_code=coupon.code if coupon else None,
        coupon_exc=coupon_exc,
    )
