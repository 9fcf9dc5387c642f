"""Manual delivery (issue 16): staff deliver an `awaiting_fulfilment` order with a note.

Whoever delivers (a staff command or button in Discord, the portal's order page) calls
`fulfil`: it keeps the note, encrypted (it often carries an access or a link), and makes the
order owed again (`wake_at`, as payment does), in one transaction. The store's worker then
delivers it like any other order (`shop.delivery.prepare` answers DELIVER for an
`awaiting_fulfilment` order with a note): the DM is created once under its nonce, falls back
to a private thread, and the order becomes `delivered` through the state table. So a portal
click and a Discord click share the exactly-once machinery, and a second click changes
nothing. The ledger is untouched: the sale was booked when the PIX was approved.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from core import audit
from core.vault import TokenVault
from fleet import fencing
from fleet.fencing import Fence
from shop.errors import InvalidStateChange, OrderNotFound, ShopError
from shop.models import FulfilmentNote, Order
from shop.outbox import enqueue_delivery
from shop.states import OrderStatus

MAX_NOTE_CHARS = 1500  # fits an embed's description with room to spare


class NoteInvalid(ShopError):
    code = "note_invalid"
    message_key = "kinds.manual.note_invalid"


def clean_note(raw: str | None) -> str:
    """The note, stripped; `NoteInvalid` when empty or longer than `MAX_NOTE_CHARS`."""
    text = (raw or "")[: MAX_NOTE_CHARS * 4].strip()
    if not text or len(text) > MAX_NOTE_CHARS:
        raise NoteInvalid(f"note of {len(text)} characters", max=MAX_NOTE_CHARS)
    return text


async def fulfil(
    vault: TokenVault,
    tenant_id: int,
    order_id: int,
    note: str,
    actor: str,
    *,
    redis: Any = None,
    fence: Fence | None = None,
) -> bool:
    """Record the staff's note for an `awaiting_fulfilment` order of `tenant_id` and owe its
    delivery; False when a note was already recorded (a second click). Raises `NoteInvalid`,
    `OrderNotFound` or `InvalidStateChange` (not awaiting fulfilment)."""
    text = clean_note(note)
    async with in_transaction() as conn:
        await fencing.check(conn, fence)
        order = (
            await Order.filter(id=order_id, tenant_id=tenant_id)
            .using_db(conn)
            .select_for_update()
            .first()
        )
        if order is None:
            raise OrderNotFound(f"order {order_id} is not this store's")
        if order.status != OrderStatus.AWAITING_FULFILMENT:
            raise InvalidStateChange(f"order {order_id} is {order.status}", status=order.status)
        if await FulfilmentNote.exists(order_id=order.id, using_db=conn):
            return False
        try:
            await FulfilmentNote.create(
                using_db=conn,
                tenant_id=tenant_id,
                order_id=order.id,
                note_enc=vault.encrypt(text),
                actor=actor[:64],
            )
        except IntegrityError:  # a concurrent click won (SQLite without row locks)
            return False
        order.wake_at = datetime.now(UTC)
        await order.save(using_db=conn, update_fields=["wake_at", "updated_at"])
        await audit.record(
            actor,
            "order.fulfilment_noted",
            "order",
            order.id,
            tenant_id=tenant_id,
            after={"note_chars": len(text)},  # never the note: it may hold an access
            using_db=conn,
        )
    await enqueue_delivery(redis, order)
    return True


async def note_of(order_id: int, vault: TokenVault, conn: Any = None) -> tuple[int, str] | None:
    """(note id, plain note) of a manually delivered order; only ever called to deliver it."""
    query = FulfilmentNote.filter(order_id=order_id)
    if conn is not None:
        query = query.using_db(conn)
    row = await query.first()
    if row is None:
        return None
    return int(row.id), vault.decrypt(row.note_enc).reveal()
