"""What delivering a paid order means, without Discord: allocate, decrypt, build, record.

`prepare` sells the order's stock in one DB transaction (see `shop.allocation`) and returns
the plain items; an order already delivered is reported `done` and nothing is allocated
again, so a delivery job sent twice (or re-claimed after a crash) never takes stock twice.
Orders filled by `shop.waiting_stock` arrive here still `waiting_stock` with their items
sold; they are delivered like paid ones. The adapter (the worker) then sends the items and
calls `mark_delivered` with the path it used.

Other product kinds (issue 16) take nothing here: their units were counted at checkout
(`shop.kinds`); `fill` sets what their message carries (`shop.kind_delivery`), and a MANUAL
order moves to `awaiting_fulfilment` (Outcome.AWAITING) until staff record a note
(`shop.fulfilment`), then is delivered like the others.

The delivery message is created once (docs/storefront.md, "Exactly once"): its nonce
(`delivery_nonce`) names the order and the items it carries; `record_send_attempt` notes the
channel and the time before each create and `record_sent` the message Discord returned;
`resend_plan` tells a re-run job whether to send again under the same nonce (Discord returns
the first message), to look in the channel first (beyond the nonce window), or nothing.

Every write here takes the bot owner's `fence` (`fleet.fencing`), checked first in the write's
own transaction: a worker another node has replaced gets `FencedOut` and nothing changes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from tortoise.expressions import F
from tortoise.transactions import in_transaction

from core.vault import TokenVault
from fleet import fencing
from fleet.alerting import alert_key, raise_alert
from fleet.fencing import Fence
from fleet.models import AlertKind
from shop import allocation, kind_delivery
from shop.models import DeliveryPath, FulfilmentNote, Order, ProductKind, Variation
from shop.notify.stock_watch import watch_low_stock
from shop.orders import transition
from shop.states import OrderStatus

O = OrderStatus  # noqa: E741 - as in shop.states
INLINE_MAX_ITEMS = 10
INLINE_MAX_CHARS = 1500
NONCE_MAX_LEN = 25  # Discord's limit on Create Message's `nonce`


class Outcome(StrEnum):
    DELIVER = "deliver"  # items allocated: send them
    WAITING = "waiting"  # paid, not enough stock: the order waits for a restock
    DONE = "done"  # already delivered: nothing to do (a duplicate job)
    AWAITING = "awaiting"  # a manual-delivery service: staff deliver it (`shop.fulfilment`)
    GONE = "gone"  # unknown, unpaid or refunded: drop the job


@dataclass
class Prepared:
    outcome: Outcome
    order: Order | None = None
    items: list[str] = field(default_factory=list, repr=False)
    product_name: str = ""
    variation_name: str = ""
    newly_waiting: bool = False  # this call moved it to waiting_stock or awaiting_fulfilment
    nonce: str = ""  # of the delivery message (Outcome.DELIVER only)
    kind: ProductKind = ProductKind.STOCK  # what the variation delivers (`shop.kind_delivery`)
    attachment: tuple[str, bytes] | None = field(default=None, repr=False)  # FILE: name, bytes


async def _allocate(
    order_id: int, actor: str, fence: Fence | None
) -> tuple[Outcome, Order | None, bool]:
    async with in_transaction() as conn:
        await fencing.check(conn, fence)  # first: a fenced-off worker claims nothing
        order = await Order.filter(id=order_id).using_db(conn).select_for_update().first()
        if order is None or order.status in (O.PENDING, O.EXPIRED, O.CANCELLED, O.REFUNDED):
            return Outcome.GONE, order, False
        if order.status == O.DELIVERED:
            return Outcome.DONE, order, False
        if order.status == O.AWAITING_FULFILMENT:  # delivered once staff wrote the note
            noted = await FulfilmentNote.exists(order_id=order.id, using_db=conn)
            return (Outcome.DELIVER if noted else Outcome.AWAITING), order, False
        kind = await kind_delivery.kind_of(order.variation_id, conn)
        if order.status == O.PAID and kind == ProductKind.MANUAL:
            moved = await transition(
                order.id, O.AWAITING_FULFILMENT, actor, using_db=conn, reason="manual delivery"
            )
            return Outcome.AWAITING, moved.order, moved.changed
        if order.status == O.PAID and kind != ProductKind.STOCK:
            return Outcome.DELIVER, order, False  # units were taken at checkout (shop.kinds)
        if order.status == O.PAID:
            shortfall = await allocation.sell(conn, order)
            if shortfall:
                moved = await transition(
                    order.id,
                    O.WAITING_STOCK,
                    actor,
                    using_db=conn,
                    reason=f"{shortfall} item(s) missing",
                )
                return Outcome.WAITING, moved.order, moved.changed
            return Outcome.DELIVER, order, False
        held = len(await allocation.sold_items(order.id, conn))  # waiting_stock
        return (Outcome.DELIVER if held >= order.quantity else Outcome.WAITING), order, False


async def prepare(
    order_id: int, vault: TokenVault, actor: str, fence: Fence | None = None
) -> Prepared:
    """Allocate (once) and decrypt an order's items; see `Outcome` for what to do next.
    `fence`: the bot owner's token (`fleet.fencing`); `FencedOut` leaves the order as it was."""
    for attempt in range(3):
        try:
            outcome, order, newly = await _allocate(order_id, actor, fence)
            break
        except allocation.Raced:
            if attempt == 2:
                raise
    if outcome != Outcome.DELIVER or order is None:
        prepared = Prepared(outcome, order, newly_waiting=newly)
        if newly and order is not None and outcome == Outcome.WAITING:
            await _alert_waiting(order)
        return await _named(prepared) if order is not None else prepared
    await watch_low_stock(order.variation_id)
    prepared = await _named(Prepared(outcome, order))
    await fill(prepared, vault)
    return prepared


async def fill(prepared: Prepared, vault: TokenVault) -> None:
    """Set what the order's delivery message carries (items, attachment, nonce), by kind;
    also for a copy of a delivered order (`Outcome.DONE`)."""
    assert prepared.order is not None
    order = prepared.order
    if prepared.kind == ProductKind.STOCK:
        sold = await allocation.sold_items(order.id)
        prepared.items = [vault.decrypt(item.content_enc).reveal() for item in sold]
        prepared.nonce = delivery_nonce(order.id, [i.id for i in sold])
        return
    items, attachment, ids = await kind_delivery.content(order, prepared.kind, vault)
    prepared.items, prepared.attachment = items, attachment
    prepared.nonce = delivery_nonce(order.id, ids)


async def _named(prepared: Prepared) -> Prepared:
    assert prepared.order is not None
    variation = await Variation.get(id=prepared.order.variation_id).prefetch_related("product")
    prepared.product_name = variation.product.name
    prepared.variation_name = variation.name
    prepared.kind = ProductKind(variation.kind)
    return prepared


async def _alert_waiting(order: Order) -> None:
    await raise_alert(
        AlertKind.WAITING_STOCK,
        key=alert_key(AlertKind.WAITING_STOCK, f"order:{order.id}"),
        tenant_id=order.tenant_id,
        instance_id=order.instance_id,
        message=f"Pedido #{order.id} pago e aguardando estoque",
        details={
            "order_id": order.id,
            "quantity": order.quantity,
            "variation_id": order.variation_id,
        },
    )


async def mark_delivered(
    order_id: int, path: DeliveryPath, actor: str, fence: Fence | None = None
) -> bool:
    """Record the delivery (state `delivered`, the path used); False if it already was."""
    async with in_transaction() as conn:
        await fencing.check(conn, fence)
        await (
            Order.filter(id=order_id)
            .using_db(conn)
            .update(delivery_attempts=F("delivery_attempts") + 1)
        )
        moved = await transition(
            order_id,
            O.DELIVERED,
            actor,
            reason=f"sent by {path}",
            updates={"delivery_path": path},
            using_db=conn,
        )
    return moved.changed


async def mark_failed(order_id: int, fence: Fence | None = None) -> None:
    """Neither DM nor channel worked: the order stays paid; the reconciler re-enqueues it later."""
    async with in_transaction() as conn:
        await fencing.check(conn, fence)
        await (
            Order.filter(id=order_id)
            .using_db(conn)
            .update(
                delivery_path=DeliveryPath.FAILED,
                delivery_attempts=F("delivery_attempts") + 1,
                updated_at=datetime.now(UTC),
            )
        )


def delivery_nonce(order_id: int, item_ids: Iterable[int]) -> str:
    """The nonce of an order's delivery message: the same order and items give the same nonce
    (a re-sent job is recognised), other items (a re-sale after a refund) another one."""
    digest = hashlib.sha256(",".join(map(str, sorted(item_ids))).encode()).hexdigest()
    return f"v1-o{order_id}-{digest}"[:NONCE_MAX_LEN]


class Resend(StrEnum):
    SEND = "send"  # no earlier create in this channel: send
    NONCE = "nonce"  # an earlier create, within the nonce window: send, Discord dedupes
    CHECK = "check"  # an earlier create, beyond the window: look in the channel first
    KNOWN = "known"  # the message is recorded: nothing to send


def resend_plan(
    order: Order, nonce: str, channel_id: str, window_s: float, now: datetime | None = None
) -> Resend:
    """What a delivery job does before creating the message in `channel_id` (pure)."""
    same = order.delivery_nonce == nonce and order.delivery_channel_id == str(channel_id)
    if not same or order.delivery_attempted_at is None:
        return Resend.SEND
    if order.delivery_message_id:
        return Resend.KNOWN
    age = (now or datetime.now(UTC)) - order.delivery_attempted_at
    return Resend.NONCE if age <= timedelta(seconds=window_s) else Resend.CHECK


async def record_send_attempt(
    order_id: int, nonce: str, channel_id: str, fence: Fence | None = None
) -> None:
    """Before a create: the nonce and channel it goes to. The time is the first attempt with
    this nonce in this channel (the nonce window counts from there); the order's in-memory
    copy is not updated, `resend_plan` is for the state the job started from. Fenced: a
    worker whose owner changed never creates the message (`FencedOut` comes first)."""
    channel_id = str(channel_id)
    async with in_transaction() as conn:
        await fencing.check(conn, fence)
        order = await Order.filter(id=order_id).using_db(conn).select_for_update().first()
        if order is None or (
            order.delivery_attempted_at is not None
            and order.delivery_nonce == nonce
            and order.delivery_channel_id == channel_id
        ):
            return
        await (
            Order.filter(id=order_id)
            .using_db(conn)
            .update(
                delivery_nonce=nonce,
                delivery_channel_id=channel_id,
                delivery_attempted_at=datetime.now(UTC),
                delivery_message_id=None,
            )
        )


async def record_sent(
    order_id: int, channel_id: str, message_id: str, fence: Fence | None = None
) -> None:
    """After a create (or a message found in the channel): what Discord holds."""
    async with in_transaction() as conn:
        await fencing.check(conn, fence)
        await (
            Order.filter(id=order_id)
            .using_db(conn)
            .update(delivery_channel_id=str(channel_id), delivery_message_id=str(message_id))
        )


def render_items(items: list[str]) -> tuple[str | None, bytes | None]:
    """(inline text, None) for a few short items, else (None, text file bytes)."""
    text = "\n".join(items)
    if len(items) <= INLINE_MAX_ITEMS and len(text) <= INLINE_MAX_CHARS and "```" not in text:
        return text, None
    return None, (text + "\n").encode("utf-8")
