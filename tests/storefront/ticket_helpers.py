"""Shared steps of the end-to-end ticket tests: a store taking tickets, a delivered order with
its DM, a ticket opened from that DM, the bot's role in the sandbox guild."""

from __future__ import annotations

from typing import Any

from shop.models import Tenant, Ticket, TicketSettings
from tests.storefront.helpers import bought, post_panel, wait_ready

MANAGE_THREADS = 1 << 34
MESSAGE_CONTENT = 1 << 15
MANAGE_CHANNELS = 1 << 4


async def ticket_store(
    fleet: Any, dc: Any, sandbox: Any, stock: list[str], *, category: bool = False
) -> Any:
    """A store taking tickets in #loja (or, `category`, as private channels under a
    "Tickets" category), staff role Equipe; the seller gave the bot Manage Threads (to lock
    closed tickets) or Manage Channels, and switched on its Message Content intent."""
    from ops.fleet_harness import make_store

    store = await make_store(fleet, dc, stock={"1 mês": stock})
    await Tenant.filter(id=store.tenant.id).update(support_channel_id=store.shop_channel)
    made = await dc.call(
        "POST", f"/_sandbox/guilds/{store.guild.id}/channels", json={"name": "Tickets", "type": 4}
    )
    await TicketSettings.create(
        tenant_id=store.tenant.id,
        staff_role_id=store.guild.role("Equipe"),
        category_id=made["id"] if category else None,
    )
    state = sandbox.discord_state
    state.bots[store.bot.application_id].enabled_intents |= MESSAGE_CONTENT
    bot_role(sandbox, store).permissions |= MANAGE_CHANNELS if category else MANAGE_THREADS
    return store


def bot_role(sandbox: Any, store: Any) -> Any:
    return next(r for r in sandbox.discord_state.guilds[store.guild.id].roles.values() if r.managed)


async def delivered(fleet: Any, dc: Any, mpc: Any, svc: Any, store: Any) -> tuple[int, Any]:
    fleet.start()
    await wait_ready(fleet, dc, store)
    order_id = await bought(store, mpc, svc, await post_panel(store), store.variations[0].id)
    dm = await store.buyer.wait_dm(lambda m: m.embeds, timeout=10)
    return order_id, dm


async def open_ticket(dc: Any, sandbox: Any, store: Any, dm: Any, order_id: int) -> Any:
    reply = await (await store.buyer.click(dm, f"vt:tko:{order_id}")).wait_reply(timeout=10)
    ticket = await Ticket.get(order_id=order_id, status="open")
    assert reply.ephemeral and f"<#{ticket.thread_id}>" in reply.content
    opening = await dc.wait_channel_message(ticket.thread_id, lambda m: m.embeds)
    return ticket, opening
