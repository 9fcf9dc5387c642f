"""End to end, real workers on the sandbox: a buyer opens a support ticket from the delivery DM,
the staff resend the item, send a replacement, refund and close it; the transcript shows on
the portal's order page (to that store only) and the thread ends archived and locked (a ticket
channel under a category is deleted). Buyers pressing staff buttons, a second ticket on one
order and a blocked buyer are refused."""

from __future__ import annotations

import pytest

from sandbox.discord.client_types import SandboxAPIError
from shop import blocklist, ledger
from shop.models import Order, StockItem, Tenant, Ticket, TicketSettings
from shop.states import StockStatus
from tests.helpers.portal import make_seller, portal_settings
from tests.storefront.ticket_helpers import (
    MANAGE_CHANNELS,
    bot_role,
    delivered,
    open_ticket,
    ticket_store,
)

pytestmark = pytest.mark.e2e
VIEW_CHANNEL = 1 << 10
REFUNDS = r"POST /v1/payments/{id}/refunds"


async def test_ticket_resend_replace_close_keeps_transcript_for_the_portal(
    db_fleet, dc, mpc, svc, sandbox, db, redis_url, tmp_path
):
    store = await ticket_store(db_fleet, dc, sandbox, ["KEY-AAAA-1111-XY", "KEY-BBBB-2222-ZW"])
    order_id, dm = await delivered(db_fleet, dc, mpc, svc, store)
    ticket, opening = await open_ticket(dc, sandbox, store, dm, order_id)
    thread = sandbox.discord_state.channels[ticket.thread_id]
    # a private thread with the buyer and the staff role's members, the order masked
    assert thread.type == 12 and {store.buyer.id, store.staff.id} <= set(thread.recipients)
    assert "KEY•••XY" in opening.text() and "AAAA-1111" not in opening.text()
    await store.buyer.say(ticket.thread_id, "a chave não funciona")
    await store.staff.say(ticket.thread_id, "vamos resolver")

    resent = await (await store.staff.click(opening, f"vt:tk:resend:{ticket.id}")).wait_reply()
    assert "reenviado" in resent.content
    dms = [m for m in await store.buyer.dms() if m.embeds]
    assert len(dms) == 2 and "KEY-AAAA-1111-XY" in dms[-1].text()

    replaced = await (await store.staff.click(opening, f"vt:tk:replace:{ticket.id}")).wait_reply()
    assert "substituído" in replaced.content
    dm = await store.buyer.wait_dm(lambda m: "KEY-BBBB-2222-ZW" in m.text())
    assert "KEY-AAAA" not in dm.text()
    statuses = dict(await StockItem.all().values_list("content_hash", "status"))
    assert sorted(statuses.values()) == [StockStatus.REPLACED, StockStatus.SOLD]

    closed = await (await store.staff.click(opening, f"vt:tk:close:{ticket.id}")).wait_reply()
    assert "fechado" in closed.content
    kept = await Ticket.get(id=ticket.id)
    assert kept.status == "closed"
    texts = [m["text"] for m in kept.transcript]
    assert "a chave não funciona" in texts and "vamos resolver" in texts
    assert [m["staff"] for m in kept.transcript if m["text"] == "vamos resolver"] == [True]
    assert thread.archived and thread.locked
    with pytest.raises(SandboxAPIError) as locked:  # nobody but moderators posts there now
        await store.buyer.say(ticket.thread_id, "oi?")
    assert locked.value.status == 400 and locked.value.body["code"] == 50083

    from web.portal import create_app

    app = create_app(portal_settings(tmp_path, db, redis_url))
    async with app.test_app():
        seller = await make_seller(app, with_store=False)
        await Tenant.filter(id=store.tenant.id).update(owner_id=seller.account.id)
        status, html = await seller.text(f"/orders/{order_id}")
        assert status == 200 and "a chave não funciona" in html and "vamos resolver" in html
        assert "Ticket: item substituído do estoque" in html and "KEY-AAAA" not in html
        stranger = await make_seller(app, "Outra")
        status, html = await stranger.text(f"/orders/{order_id}")
        assert status == 404 and "a chave não funciona" not in html


async def test_channel_ticket_only_staff_refund_once_and_buyers_are_refused(
    db_fleet, dc, mpc, svc, sandbox
):
    store = await ticket_store(db_fleet, dc, sandbox, ["KEY-CCCC-3333-QQ"], category=True)
    order_id, dm = await delivered(db_fleet, dc, mpc, svc, store)
    # the seller took Manage Channels away: the buyer is told, no ticket stays open
    bot_role(sandbox, store).permissions &= ~MANAGE_CHANNELS
    failed = await (await store.buyer.click(dm, f"vt:tko:{order_id}")).wait_reply(timeout=10)
    assert "Não consegui abrir o ticket" in failed.content
    assert await Ticket.filter(order_id=order_id, status="open").count() == 0
    bot_role(sandbox, store).permissions |= MANAGE_CHANNELS
    ticket, opening = await open_ticket(dc, sandbox, store, dm, order_id)
    # a private channel under the category: hidden from @everyone, open to the buyer
    channel = sandbox.discord_state.channels[ticket.thread_id]
    guild = sandbox.discord_state.guilds[store.guild.id]
    assert channel.type == 0 and channel.parent_id == (await TicketSettings.get()).category_id
    see = sandbox.discord_state.channel_permissions
    outsider = await dc.buyer("curioso", guilds=[store.guild])
    assert see(guild, channel, store.buyer.id) & VIEW_CHANNEL
    assert see(guild, channel, store.staff.id) & VIEW_CHANNEL
    assert not see(guild, channel, outsider.id) & VIEW_CHANNEL
    # /meus-pedidos offers the same help per order; a second ticket on the order is refused
    mine = await (
        await store.buyer.slash(store.bot, store.guild, "loja", "meus-pedidos")
    ).wait_reply()
    assert mine.message is not None and "vt:tkos" in mine.message.custom_ids()
    again = await (await store.buyer.select(mine.message, "vt:tkos", [str(order_id)])).wait_reply()
    assert "já tem um ticket aberto" in again.content

    for action in ("refund", "replace", "close"):  # the buyer is in the thread, not staff
        no = await (await store.buyer.click(opening, f"vt:tk:{action}:{ticket.id}")).wait_reply()
        assert no.ephemeral and "Só a equipe" in no.content
    assert (await mpc.requests()).get(REFUNDS, 0) == 0
    assert (await Ticket.get(id=ticket.id)).status == "open"

    ask = await (await store.staff.click(opening, f"vt:tk:refund:{ticket.id}")).wait_reply()
    assert ask.ephemeral and ask.message is not None
    confirm = f"vt:tk:refund_ok:{ticket.id}"
    done = await (await store.staff.click(ask.message, confirm)).wait_reply(timeout=10)
    assert "reembolsado" in done.content
    await (await store.staff.click(ask.message, confirm)).wait_reply(timeout=10)  # replayed
    assert (await Order.get(id=order_id)).status == "refunded"
    assert (await ledger.balance(store.tenant.id)).total_cents == 0
    assert (await mpc.requests()).get(REFUNDS, 0) == 1

    await (await store.staff.click(opening, f"vt:tk:close:{ticket.id}")).wait_reply()
    assert ticket.thread_id not in sandbox.discord_state.channels  # deleted, transcript kept
    assert (await Ticket.get(id=ticket.id)).transcript
    await blocklist.block_buyer(store.tenant.id, store.buyer.id, "account:1", reason="fraude")
    blocked = await (await store.buyer.click(dm, f"vt:tko:{order_id}")).wait_reply()
    assert blocked.ephemeral and "Não foi possível abrir um ticket nesta loja" in blocked.content
    assert await Ticket.filter(order_id=order_id).count() == 2  # the failed one, this one
