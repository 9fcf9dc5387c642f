"""The buyer's "Já paguei / Verificar pagamento": ask Mercado Pago about one order's PIX now.

Bounded per order so a button cannot become a way to hammer Mercado Pago: one question every
CHECK_COOLDOWN_S seconds and CHECK_MAX_PER_ORDER in all (Redis keys in `fleet.keys`; with Redis
down, the same limits in this process). A press that is refused makes no request. A question
that approves the payment records `confirmed_via = "button"` and the delivery follows through
the normal path (order paid → delivery enqueued).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from redis.asyncio import Redis
from tortoise.expressions import Q

from fleet import keys
from shop.errors import ShopError
from shop.models import Order, Payment
from shop.payments.payment_polling import PollBudget
from shop.payments.service import PaymentServices
from shop.payments.sync import sync_payment
from shop.states import PAID_ORDER_STATES, OrderStatus, PaymentStatus

log = logging.getLogger(__name__)
CHECK_COOLDOWN_S = 5
CHECK_MAX_PER_ORDER = 10
CHECK_COUNT_TTL = 2 * 3600  # longer than any PIX lives
PAID_STATES = PAID_ORDER_STATES  # paid, waiting for stock or manual delivery, delivered
_local: dict[int, list[float]] = {}  # order id -> press times, when Redis is unreachable


class NotYourOrder(ShopError):
    """Someone other than the order's buyer pressed a button of its PIX card."""

    code = "not_your_order"
    message_key = "paycheck.error.not_your_order"


@dataclass(frozen=True)
class CheckOutcome:
    """paid (now or before) | pending | closed (expired, cancelled, refunded) | wait (cooldown,
    `wait_s` seconds) | exhausted (no more questions for this order)."""

    kind: str
    wait_s: int = 0


async def _admit(redis: Redis | None, order_id: int) -> CheckOutcome | None:
    """None when this press may ask Mercado Pago; else why not."""
    if redis is not None:
        try:
            cooldown = keys.payment_check_cooldown(order_id)
            if not await redis.set(cooldown, "1", nx=True, ex=CHECK_COOLDOWN_S):
                ttl = await redis.ttl(cooldown)
                return CheckOutcome("wait", max(1, int(ttl)))
            count_key = keys.payment_check_count(order_id)
            pipe = redis.pipeline(transaction=True)
            pipe.incr(count_key)
            pipe.expire(count_key, CHECK_COUNT_TTL)
            count, _ = await pipe.execute()
            return CheckOutcome("exhausted") if count > CHECK_MAX_PER_ORDER else None
        except Exception:  # noqa: BLE001 - Redis down: the same limits, in this process
            log.warning("payment check: Redis unreachable, limiting in process")
    now = time.monotonic()
    presses = _local.setdefault(order_id, [])
    if presses and now - presses[-1] < CHECK_COOLDOWN_S:
        return CheckOutcome("wait", max(1, int(CHECK_COOLDOWN_S - (now - presses[-1]) + 0.999)))
    if len(presses) >= CHECK_MAX_PER_ORDER:
        return CheckOutcome("exhausted")
    if len(_local) > 10_000:
        _local.clear()
    presses.append(now)
    return None


def _settled(order: Order) -> CheckOutcome | None:
    if order.status in PAID_STATES:
        return CheckOutcome("paid")
    if order.status != OrderStatus.PENDING:
        return CheckOutcome("closed")
    return None


async def check_payment(
    svc: PaymentServices,
    tenant_id: int,
    order_id: int,
    buyer_id: str,
    budget: PollBudget | None = None,
) -> CheckOutcome:
    """The buyer asks whether their PIX was paid: answer from our records when they already
    know, else (within the limits) ask Mercado Pago once and apply what it says."""
    order = await Order.get_or_none(id=order_id, tenant_id=tenant_id)
    if order is None or order.buyer_discord_id != buyer_id:
        raise NotYourOrder(f"order {order_id} is not buyer {buyer_id}'s")
    known = _settled(order)
    if known is not None:
        return known
    payment = (
        await Payment.filter(
            Q(order_id=order.id) | Q(cart_id=order.cart_id or -1),  # a cart line: its cart's
            provider_payment_id__isnull=False,
        )
        .order_by("-created_at")
        .first()
    )
    if payment is None:
        return CheckOutcome("pending")
    refused = await _admit(svc.redis, order.id)
    if refused is not None:
        return refused
    if budget is not None:
        await budget.take(force=True)  # counted, never refused: polling makes room for it
    await sync_payment(svc, str(payment.id), f"buyer:{buyer_id}", via="button")
    fresh = await Payment.get(id=payment.id)
    if fresh.status not in (PaymentStatus.PENDING, PaymentStatus.IN_PROCESS):
        await Payment.filter(id=payment.id).update(next_poll_at=None)
    return _settled(await Order.get(id=order.id)) or CheckOutcome("pending")
