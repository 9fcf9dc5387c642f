"""Checkout: validate a purchase, create the order once, reserve its stock, charge the PIX.

The order is keyed by a Discord id (`Order.interaction_id`): the storefront passes the id of
the checkout card message, so a double click on "Confirmar" (two interactions on the same
message) or a replayed interaction finds the order the first one created. Order, coupon use
and reservation are one DB transaction: when stock runs out between the click and the
confirmation nothing is written and nothing is charged. A blocked buyer, or one already
holding the store's maximum of unpaid orders, is refused in that same transaction
(`shop.buyer_limits`), before anything is reserved or charged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from core import audit
from shop import allocation, buyer_limits, kinds, pricing
from shop.errors import InvalidStateChange, ShopError
from shop.models import Order, Payment, Product, StockItem, Variation
from shop.orders import cancel_order
from shop.payments.service import PIX_VALIDITY, PaymentServices, create_pix_payment
from shop.states import OrderStatus, StockStatus

_T = TypeVar("_T")

HARD_MAX_QUANTITY = 100  # whatever the product says: one PIX is not a wholesale order


class ProductUnavailable(ShopError):
    """Unknown, deleted or inactive product or variation (e.g. a panel for a deleted one)."""

    code = "product_unavailable"
    message_key = "storefront.error.product_unavailable"


class InvalidQuantity(ShopError):
    code = "invalid_quantity"
    message_key = "storefront.error.invalid_quantity"


@dataclass(frozen=True)
class CheckoutRequest:
    tenant_id: int
    instance_id: int | None
    variation_id: int
    quantity: int
    buyer_id: str
    key: str  # idempotency key: the checkout card's message id (or an interaction id)
    buyer_name: str = ""
    guild_id: str | None = None
    channel_id: str | None = None
    locale: str = "pt-BR"
    coupon_code: str | None = None


@dataclass(frozen=True)
class Offer:
    product: Product
    variation: Variation
    available: int
    max_quantity: int


async def sellable(tenant_id: int, variation_id: int) -> Offer:
    """The variation with its product and what can be bought now; `ProductUnavailable`."""
    variation = await Variation.get_or_none(
        id=variation_id,
        tenant_id=tenant_id,
        active=True,
        deleted_at__isnull=True,
        product__active=True,
        product__deleted_at__isnull=True,
    ).prefetch_related("product")
    if variation is None:
        raise ProductUnavailable(f"variation {variation_id} not for sale")
    if kinds.is_stock(variation.kind):
        available = await StockItem.filter(
            variation_id=variation.id, status=StockStatus.AVAILABLE
        ).count()
    else:  # units under the sales cap (shop.kinds); a kind missing its content is not for sale
        await kinds.check_deliverable(variation)
        available = kinds.units_left(variation)
    cap = max(1, min(variation.product.max_per_order, HARD_MAX_QUANTITY))
    return Offer(variation.product, variation, available, min(cap, available))


def check_quantity(offer: Offer, quantity: int) -> None:
    """1 <= quantity <= per-product maximum; `InvalidQuantity` otherwise."""
    cap = max(1, min(offer.product.max_per_order, HARD_MAX_QUANTITY))
    if not 1 <= quantity <= cap:
        raise InvalidQuantity(f"quantity {quantity} not in 1..{cap}", maximum=cap)


async def preview(
    tenant_id: int, variation_id: int, quantity: int, coupon_code: str | None = None
) -> tuple[Offer, pricing.Quote]:
    """What the buyer would pay (validates everything, reserves nothing)."""
    offer = await sellable(tenant_id, variation_id)
    check_quantity(offer, quantity)
    if offer.available < quantity:
        raise allocation.OutOfStock(f"{offer.available} < {quantity}")
    coupon = None
    code = pricing.normalize_code(coupon_code)
    if code:
        coupon = await pricing.find_coupon(
            tenant_id, code, offer.product.id, offer.variation.price_cents * quantity
        )
    return offer, pricing.quote(offer.variation.price_cents, quantity, coupon)


async def place_order(
    req: CheckoutRequest, *, hold: timedelta = PIX_VALIDITY, now: datetime | None = None
) -> tuple[Order, bool]:
    """Create the order and reserve its stock, once per `req.key`; (order, created).

    Raises `ProductUnavailable`, `InvalidQuantity`, `CouponRejected`, `OutOfStock`,
    `BuyerBlocked` or `TooManyOpenOrders` (then nothing was written).
    """
    existing = await Order.get_or_none(interaction_id=req.key, tenant_id=req.tenant_id)
    if existing is not None:
        return existing, False
    now = now or datetime.now(UTC)
    offer = await sellable(req.tenant_id, req.variation_id)
    check_quantity(offer, req.quantity)
    return await create_once(
        lambda: _create_reserved(req, offer, now, now + hold),
        lambda: Order.get_or_none(interaction_id=req.key, tenant_id=req.tenant_id),
    )


async def create_once(
    create: Callable[[], Awaitable[_T]],
    existing: Callable[[], Awaitable[_T | None]],
    also: tuple[type[Exception], ...] = (),
) -> tuple[_T, bool]:
    """Run `create` (one transaction that writes the checkout key); (made, created). A
    double click loses on the key's unique index (or on `also`) and gets the first one's;
    a reservation that lost a race is retried once, then it counts."""
    lost_key: tuple[type[Exception], ...] = (IntegrityError, *also)
    try:
        return await create(), True
    except lost_key:
        found = await existing()
        if found is None:
            raise
        return found, False
    except allocation.Raced:
        return await create(), True


class BuyerContext(Protocol):
    """Who buys where (a `CheckoutRequest`, or a cart's `shop.cart_checkout` request)."""

    @property
    def tenant_id(self) -> int: ...
    @property
    def instance_id(self) -> int | None: ...
    @property
    def buyer_id(self) -> str: ...
    @property
    def buyer_name(self) -> str: ...
    @property
    def guild_id(self) -> str | None: ...
    @property
    def channel_id(self) -> str | None: ...
    @property
    def locale(self) -> str: ...


def buyer_fields(req: BuyerContext) -> dict[str, Any]:
    """The `Order` fields naming the buyer and where they bought (bounded to the columns)."""
    return {
        "tenant_id": req.tenant_id,
        "instance_id": req.instance_id,
        "buyer_discord_id": req.buyer_id,
        "buyer_name": req.buyer_name[:100],
        "guild_id": req.guild_id,
        "channel_id": req.channel_id,
        "locale": req.locale[:8],
    }


async def reserve(
    conn: Any, order_id: int, variation: Variation, quantity: int, until: datetime
) -> None:
    """Hold what a pending order buys: stock items, or units under a kind's sales cap."""
    if kinds.is_stock(variation.kind):
        await allocation.reserve(conn, order_id, variation.id, quantity, until)
    else:
        await kinds.reserve_units(conn, variation.id, quantity)


async def _create_reserved(
    req: CheckoutRequest, offer: Offer, now: datetime, until: datetime
) -> Order:
    code = pricing.normalize_code(req.coupon_code)
    subtotal = offer.variation.price_cents * req.quantity
    async with in_transaction() as conn:
        # Blocklist and open-order cap, under a per-buyer lock: counted and created at once.
        await buyer_limits.guard(conn, req.tenant_id, req.buyer_id)
        coupon = None
        if code:
            coupon = await pricing.find_coupon(
                req.tenant_id, code, offer.product.id, subtotal, now=now, using_db=conn
            )
            await pricing.claim_use(coupon, conn)
        q = pricing.quote(offer.variation.price_cents, req.quantity, coupon)
        order = await Order.create(
            using_db=conn,
            **buyer_fields(req),
            product_id=offer.product.id,
            variation_id=offer.variation.id,
            coupon_id=coupon.id if coupon else None,
            interaction_id=req.key,
            quantity=req.quantity,
            unit_price_cents=q.unit_price_cents,
            discount_cents=q.discount_cents,
            total_cents=q.total_cents,
            reserved_until=until,
        )
        await reserve(conn, order.id, offer.variation, req.quantity, until)
        await audit.record(
            f"buyer:{req.buyer_id}",
            "order.created",
            "order",
            order.id,
            tenant_id=req.tenant_id,
            after={
                "variation_id": offer.variation.id,
                "quantity": req.quantity,
                "total_cents": q.total_cents,
                "coupon": q.coupon_code,
            },
            using_db=conn,
        )
    return order


async def checkout(svc: PaymentServices, req: CheckoutRequest) -> tuple[Order, Payment]:
    """Order + reservation + PIX charge. A charge that cannot be created cancels the order
    (its reservation is released) and the error is raised: nothing is charged."""
    order, _ = await place_order(req)
    if order.status != OrderStatus.PENDING:
        raise InvalidStateChange(f"order {order.id} is {order.status}", status=order.status)
    actor = f"buyer:{req.buyer_id}"
    variation = await Variation.get(id=order.variation_id).prefetch_related("product")
    try:
        payment = await create_pix_payment(
            svc,
            order.id,
            actor,
            expires_at=order.reserved_until,
            description=f"{variation.product.name} - {variation.name}",
        )
    except ShopError:
        await cancel_order(order.id, actor, reason="PIX charge could not be created")
        raise
    return order, payment
