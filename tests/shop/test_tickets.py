"""Buyer support tickets without Discord (shop.tickets, shop.ticket_actions), on SQLite and
PostgreSQL: who may open one and how many, replacement from stock, refund under the money rules,
close with the transcript, and the dashboard's figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from tortoise.transactions import in_transaction

from core.models import AuditLog
from shop import allocation, blocklist, ledger, ticket_actions, tickets
from shop.allocation import OutOfStock
from shop.buyer_limits import BuyerBlocked
from shop.delivery import mark_delivered
from shop.models import DeliveryPath, Order, StockItem, Ticket, TicketSettings
from shop.payments.service import create_pix_payment
from shop.payments.sync import sync_payment
from shop.states import OrderStatus, StockStatus
from tests.shop.helpers import make_order, make_store

BUYER = "555"  # tests.shop.helpers.make_order's buyer


async def paid_store(svc, mp, *, stock: int = 3, per_day: int | None = None):
    store = await make_store(price_cents=2500, stock=stock)
    await type(store["tenant"]).filter(id=store["tenant"].id).update(support_channel_id="1" * 18)
    if per_day is not None:
        await TicketSettings.create(tenant_id=store["tenant"].id, per_buyer_per_day=per_day)
    return store


async def paid_order(svc, mp, store, *, quantity: int = 1) -> Order:
    """A paid order of `quantity` items, allocated and delivered."""
    order = await make_order(store, quantity=quantity)
    payment = await create_pix_payment(svc, order.id, f"buyer:{BUYER}")
    await mp.control.approve(int(payment.provider_payment_id))
    await sync_payment(svc, str(payment.id), "test")
    async with in_transaction() as conn:
        fresh = await Order.filter(id=order.id).using_db(conn).get()
        assert await allocation.sell(conn, fresh) == 0
    await mark_delivered(order.id, DeliveryPath.DM, "test")
    return await Order.get(id=order.id)


async def test_only_the_buyer_opens_one_ticket_per_order_and_it_is_on_the_timeline(svc, mp):
    store = await paid_store(svc, mp)
    order = await paid_order(svc, mp, store)
    tenant_id = store["tenant"].id
    with pytest.raises(tickets.TicketNotAllowed):
        await tickets.open_ticket(tenant_id, order.id, "999", "buyer:999")
    ticket = await tickets.open_ticket(tenant_id, order.id, BUYER, f"buyer:{BUYER}")
    with pytest.raises(tickets.TicketAlreadyOpen):
        await tickets.open_ticket(tenant_id, order.id, BUYER, f"buyer:{BUYER}")
    assert await Ticket.filter(order_id=order.id).count() == 1
    logged = await AuditLog.filter(target_type="order", target_id=str(order.id)).values_list(
        "action", flat=True
    )
    assert "ticket.opened" in logged
    # closed: the order may get a new ticket
    assert await tickets.close_ticket(ticket, "discord:1", [])
    assert not await tickets.close_ticket(ticket, "discord:1", [])  # a repeated close
    again = await tickets.open_ticket(tenant_id, order.id, BUYER, f"buyer:{BUYER}")
    assert again.id != ticket.id


async def test_another_store_cannot_open_a_ticket_on_the_order(svc, mp):
    store = await paid_store(svc, mp)
    order = await paid_order(svc, mp, store)
    other = await paid_store(svc, mp)
    with pytest.raises(tickets.TicketNotAllowed):
        await tickets.open_ticket(other["tenant"].id, order.id, BUYER, f"buyer:{BUYER}")


async def test_unpaid_order_blocked_buyer_and_store_without_channel_are_refused(svc, mp):
    store = await paid_store(svc, mp)
    tenant_id = store["tenant"].id
    pending = await make_order(store)
    with pytest.raises(tickets.TicketNotAllowed):
        await tickets.open_ticket(tenant_id, pending.id, BUYER, "b")
    order = await paid_order(svc, mp, store)
    await blocklist.block_buyer(tenant_id, BUYER, "account:1", reason="fraude")
    with pytest.raises(BuyerBlocked):
        await tickets.open_ticket(tenant_id, order.id, BUYER, "b")
    bare = await make_store()
    bare_order = await paid_order(svc, mp, bare)
    with pytest.raises(tickets.TicketsOff):
        await tickets.open_ticket(bare["tenant"].id, bare_order.id, BUYER, "b")
    assert await Ticket.all().count() == 0
    # a ticket category alone turns tickets on (private channels, no support channel)
    await TicketSettings.create(tenant_id=bare["tenant"].id, category_id="2" * 18)
    assert await tickets.enabled(bare["tenant"])
    await tickets.open_ticket(bare["tenant"].id, bare_order.id, BUYER, "b")


async def test_a_buyer_opens_at_most_the_store_limit_per_day(svc, mp):
    store = await paid_store(svc, mp, stock=4, per_day=2)
    tenant_id = store["tenant"].id
    orders = [await paid_order(svc, mp, store) for _ in range(3)]
    first = await tickets.open_ticket(tenant_id, orders[0].id, BUYER, "b")
    await tickets.close_ticket(first, "s", [])
    await tickets.open_ticket(tenant_id, orders[1].id, BUYER, "b")
    with pytest.raises(tickets.TooManyTickets) as refused:
        await tickets.open_ticket(tenant_id, orders[2].id, BUYER, "b")
    assert "2" in refused.value.message("en")
    # a day later the count starts again
    await Ticket.all().update(opened_at=datetime.now(UTC) - timedelta(days=1, minutes=1))
    await tickets.open_ticket(tenant_id, orders[2].id, BUYER, "b")


async def test_replacement_takes_one_new_item_and_marks_the_old_one_replaced(svc, mp):
    store = await paid_store(svc, mp, stock=2)
    order = await paid_order(svc, mp, store)
    ticket = await tickets.open_ticket(store["tenant"].id, order.id, BUYER, "b")
    (old,) = await allocation.sold_items(order.id)
    old_id, new_id = await ticket_actions.replace_item(ticket, None, "discord:7")
    assert old_id == old.id and new_id != old.id
    assert (await StockItem.get(id=old.id)).status == StockStatus.REPLACED
    assert [i.id for i in await allocation.sold_items(order.id)] == [new_id]
    # stock is empty now: a second replacement changes nothing
    with pytest.raises(OutOfStock):
        await ticket_actions.replace_item(ticket, None, "discord:7")
    assert [i.id for i in await allocation.sold_items(order.id)] == [new_id]
    assert (await StockItem.get(id=new_id)).status == StockStatus.SOLD
    audit = await AuditLog.get(action="ticket.replaced")
    assert audit.after["old_item_id"] == old.id and audit.actor == "discord:7"
    assert (await Ticket.get(id=ticket.id)).first_response_at is not None


async def test_the_staff_pick_which_item_of_a_larger_order_to_replace(svc, mp):
    store = await paid_store(svc, mp, stock=3)
    order = await paid_order(svc, mp, store, quantity=2)
    ticket = await tickets.open_ticket(store["tenant"].id, order.id, BUYER, "b")
    first, second = await allocation.sold_items(order.id)
    old_id, new_id = await ticket_actions.replace_item(ticket, second.id, "discord:7")
    assert old_id == second.id
    assert [i.id for i in await allocation.sold_items(order.id)] == [first.id, new_id]
    with pytest.raises(ticket_actions.NothingToReplace):  # not (or no longer) this order's
        await ticket_actions.replace_item(ticket, second.id, "discord:7")


async def test_refund_from_a_ticket_follows_the_money_rules_and_reaches_mercado_pago_once(svc, mp):
    store = await paid_store(svc, mp)
    order = await paid_order(svc, mp, store)
    tenant_id = store["tenant"].id
    assert (await ledger.balance(tenant_id)).total_cents == 2500 - 125
    ticket = await tickets.open_ticket(tenant_id, order.id, BUYER, "b")
    await ticket_actions.refund(svc, ticket, "discord:7")
    await ticket_actions.refund(svc, ticket, "discord:7")  # a second press
    assert (await Order.get(id=order.id)).status == OrderStatus.REFUNDED
    assert (await ledger.balance(tenant_id)).total_cents == 0
    assert (await mp.control.requests()).get(r"POST /v1/payments/{id}/refunds", 0) == 1


async def test_close_keeps_a_bounded_transcript_and_the_first_staff_answer(svc, mp):
    store = await paid_store(svc, mp)
    order = await paid_order(svc, mp, store)
    ticket = await tickets.open_ticket(store["tenant"].id, order.id, BUYER, "b")
    opened = (await Ticket.get(id=ticket.id)).opened_at
    answer = opened + timedelta(minutes=4)
    lines = [
        {"author": "ana", "author_id": BUYER, "staff": False, "at": opened, "text": "não abre"},
        {
            "author": "equipe",
            "author_id": "7",
            "staff": True,
            "at": answer,
            "text": "x" * 5000,
            "attachments": ["print.png"],
        },
    ]
    assert await tickets.close_ticket(ticket, "discord:7", lines)
    kept = await Ticket.get(id=ticket.id)
    assert kept.status == "closed" and kept.open_key is None
    assert [m["text"][:8] for m in kept.transcript] == ["não abre", "x" * 8]
    assert len(kept.transcript[1]["text"]) == tickets.MAX_TEXT
    assert kept.transcript[1]["attachments"] == ["print.png"]
    assert abs((kept.first_response_at - answer).total_seconds()) < 1
    figures = await tickets.stats(store["tenant"].id)
    assert figures.open == 0 and figures.answered == 1
    assert figures.median_first_response_s == pytest.approx(240, abs=1)


def test_masked_items_never_show_their_middle():
    assert tickets.mask("ABCD-EFGH-IJKL-MNOP") == "ABC•••OP"
    assert "senha" not in tickets.mask("user@mail.com:senha123")
    assert tickets.mask("short") == "••••••"
