"""Support tickets in Discord (issue 17): the buyer's "Preciso de ajuda" opens a private thread
in the store's support channel with the buyer and the staff role, opened with the order's
summary (items masked); the staff act from its buttons. The rules and the records are
`shop.tickets` and `shop.ticket_actions`; this module only speaks Discord.

Private threads (type 12) are made with Start Thread without Message; the buyer is added as a
thread member, the staff role by its mention (Discord adds a mentioned role's members who can
see the parent channel); closing archives and locks the thread with Modify Channel
(https://discord.com/developers/docs/resources/channel#start-thread-without-message,
https://discord.com/developers/docs/resources/channel#modify-channel-json-params-thread).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, cast

import disnake

from core.i18n import t
from shop import inputs, ticket_actions, tickets
from shop.models import Order, Ticket
from shop.tickets import StaffOnly
from worker.extensions.storefront import tickets_ui
from worker.extensions.storefront.buyer import as_file, delivery_copy
from worker.extensions.storefront.common import Storefront, is_staff, locale_of, reply
from worker.extensions.storefront.send_once import send_dm

log = logging.getLogger("worker.storefront.tickets")
TRANSCRIPT_PAGE = 100  # Get Channel Messages returns at most 100 per call
# Permission bits (https://discord.com/developers/docs/topics/permissions)
VIEW, SEND, EMBED, ATTACH, READ_HISTORY = 1 << 10, 1 << 11, 1 << 14, 1 << 15, 1 << 16


def _actor(inter: Any) -> str:
    return f"discord:{inter.author.id}"


async def open_for_order(sf: Storefront, inter: Any, order_id: int) -> None:
    """The buyer asks for help with one order: a ticket, then its private thread."""
    locale = locale_of(inter)
    await inter.response.defer(ephemeral=True)
    buyer = str(inter.author.id)
    ticket = await tickets.open_ticket(sf.ctx.tenant_id, order_id, buyer, f"buyer:{buyer}")
    tenant = await sf.tenant()
    settings = await tickets.settings_of(tenant.id)
    role = settings.staff_role_id
    try:
        if settings.category_id:
            thread_id = await open_channel(sf, ticket, settings.category_id, role)
        else:
            thread_id = await open_thread(sf, ticket, tenant.support_channel_id or "0")
        summary = await ticket_actions.summary(order_id, sf.vault)
        mentions = f"<@{buyer}>" + (f" <@&{role}>" if role else "")
        await sf.bot.get_partial_messageable(int(thread_id)).send(
            t("tickets.opened_in_thread", tenant.locale, mentions=mentions),
            embed=tickets_ui.summary_embed(summary, ticket.id, tenant.locale),
            components=tickets_ui.staff_buttons(ticket.id, tenant.locale),
            allowed_mentions=disnake.AllowedMentions(
                users=[disnake.Object(int(buyer))],
                roles=[disnake.Object(int(role))] if role else False,
            ),
        )
    except disnake.HTTPException as exc:
        log.warning("ticket %s: thread not opened: %s", ticket.id, exc)
        await tickets.abandon(ticket, "worker:tickets", f"thread not opened: {exc.status}")
        await reply(inter, t("tickets.error.thread_failed", locale))
        return
    await reply(inter, t("tickets.opened", locale, thread=f"<#{thread_id}>"))


async def open_thread(sf: Storefront, ticket: Ticket, channel_id: str) -> str:
    """A private thread in the support channel, with the buyer as a member."""
    thread = await sf.bot.http.start_thread_without_message(
        int(channel_id),
        name=f"ticket-{ticket.id}-pedido-{ticket.order_id}",
        auto_archive_duration=10080,
        type=disnake.ChannelType.private_thread.value,
        invitable=False,
    )
    thread_id = str(thread["id"])
    await tickets.attach_thread(ticket, thread_id)
    await sf.bot.http.add_user_to_thread(int(thread_id), int(ticket.buyer_discord_id))
    return thread_id


async def open_channel(sf: Storefront, ticket: Ticket, category_id: str, role: str | None) -> str:
    """A private text channel under the seller's category: hidden from @everyone, open to
    the buyer, the staff role and the bot (Create Guild Channel, with its overwrites)."""
    tenant = await sf.tenant()
    me = sf.bot.user.id if sf.bot.user else 0
    talk = VIEW | SEND | READ_HISTORY | ATTACH
    overwrites: list[dict[str, Any]] = [
        {"id": str(tenant.guild_id), "type": 0, "allow": "0", "deny": str(VIEW)},
        {"id": ticket.buyer_discord_id, "type": 1, "allow": str(talk), "deny": "0"},
        {"id": str(me), "type": 1, "allow": str(talk | EMBED), "deny": "0"},
    ]
    if role:
        overwrites.append({"id": role, "type": 0, "allow": str(talk), "deny": "0"})
    channel = await sf.bot.http.create_channel(
        int(tenant.guild_id or 0),
        disnake.ChannelType.text.value,
        name=f"ticket-{ticket.id}-pedido-{ticket.order_id}",
        parent_id=category_id,
        permission_overwrites=overwrites,
        reason=f"Vitrine: ticket #{ticket.id}",
    )
    await tickets.attach_thread(ticket, str(channel["id"]), in_channel=True)
    return str(channel["id"])


async def on_open(sf: Storefront, inter: Any, args: list[str]) -> None:
    await open_for_order(sf, inter, inputs.parse_id(args[0] if args else ""))


async def on_open_select(sf: Storefront, inter: Any, args: list[str]) -> None:
    await open_for_order(sf, inter, inputs.parse_id(inter.values[0]))


async def staff_ticket(sf: Storefront, inter: Any, ticket_id: int) -> Ticket:
    """The open ticket, if the one pressing is the store's staff: the staff role, or Manage
    Server. A buyer pressing a staff button gets `StaffOnly` and nothing happens."""
    ticket = await tickets.get_open(sf.ctx.tenant_id, ticket_id)
    role = (await tickets.settings_of(sf.ctx.tenant_id)).staff_role_id
    roles = getattr(inter.author, "_roles", ())  # the member's role ids, as the interaction sent
    if not (is_staff(inter) or (role and int(role) in roles)):
        raise StaffOnly(f"{inter.author.id} is not staff of store {sf.ctx.tenant_id}")
    return ticket


async def on_staff(sf: Storefront, inter: Any, args: list[str]) -> None:
    """`vt:tk:<action>:<ticket>`; one action at a time per ticket (a double click waits and
    then finds the ticket as the first click left it)."""
    action = args[0] if args else ""
    ticket_id = inputs.parse_id(args[1] if len(args) > 1 else "")
    async with sf.lock(f"ticket:{ticket_id}"):
        ticket = await staff_ticket(sf, inter, ticket_id)
        handler = _ACTIONS.get(action)
        if handler is not None:
            await handler(sf, inter, ticket)


async def resend(sf: Storefront, inter: Any, ticket: Ticket) -> None:
    order = await Order.get(id=ticket.order_id)
    locale = locale_of(inter)
    if order.status != "delivered":
        await reply(inter, t("tickets.error.not_delivered", locale))
        return
    await inter.response.defer()
    embed, attachment = await delivery_copy(sf, order, _actor(inter), order.locale)
    sent = await send_dm(sf.bot, order.buyer_discord_id, embed=embed, file=as_file(attachment))
    await tickets.record_action(ticket, "resent", _actor(inter), {"dm": sent})
    key = "tickets.done.resent" if sent else "tickets.done.dm_closed"
    await inter.followup.send(t(key, locale, user=f"<@{inter.author.id}>"))


async def replace(sf: Storefront, inter: Any, ticket: Ticket) -> None:
    items = (await ticket_actions.summary(ticket.order_id, sf.vault)).items
    if len(items) > 1:  # which one: the staff pick it (masked)
        select = tickets_ui.replace_select(ticket.id, items, locale_of(inter))
        await reply(inter, components=[select])
        return
    await _replace(sf, inter, ticket, None)


async def on_replace_pick(sf: Storefront, inter: Any, args: list[str]) -> None:
    ticket_id = inputs.parse_id(args[0] if args else "")
    async with sf.lock(f"ticket:{ticket_id}"):
        ticket = await staff_ticket(sf, inter, ticket_id)
        await _replace(sf, inter, ticket, inputs.parse_id(inter.values[0]))


async def _replace(sf: Storefront, inter: Any, ticket: Ticket, item_id: int | None) -> None:
    """A new item from stock for the old one, then a fresh delivery DM with the order's items."""
    await inter.response.defer()
    await ticket_actions.replace_item(ticket, item_id, _actor(inter))
    sf.panel_dirty.set()
    order = await Order.get(id=ticket.order_id)
    embed, attachment = await delivery_copy(sf, order, _actor(inter), order.locale)
    sent = await send_dm(sf.bot, order.buyer_discord_id, embed=embed, file=as_file(attachment))
    key = "tickets.done.replaced" if sent else "tickets.done.replaced_dm_closed"
    await inter.followup.send(t(key, locale_of(inter), user=f"<@{inter.author.id}>"))


async def refund(sf: Storefront, inter: Any, ticket: Ticket) -> None:
    """First press: ask to confirm (a refund cannot be undone)."""
    order = await Order.get(id=ticket.order_id)
    buttons = tickets_ui.confirm_refund(ticket.id, order.total_cents, locale_of(inter))
    await reply(inter, t("tickets.refund_ask", locale_of(inter)), components=buttons)


async def refund_confirmed(sf: Storefront, inter: Any, ticket: Ticket) -> None:
    await inter.response.defer()
    result = await ticket_actions.refund(sf.payments(), ticket, _actor(inter))
    log.info("ticket %s: refund of order %s: %s", ticket.id, ticket.order_id, result.outcome)
    await inter.followup.send(
        t("tickets.done.refunded", locale_of(inter), user=f"<@{inter.author.id}>")
    )


async def close(sf: Storefront, inter: Any, ticket: Ticket) -> None:
    """Keep the transcript, then archive and lock the thread (delete the private channel:
    the transcript is the record)."""
    await inter.response.defer()
    thread_id = ticket.thread_id or str(inter.channel_id)
    transcript = await read_transcript(sf, thread_id, ticket.buyer_discord_id)
    if not await tickets.close_ticket(ticket, _actor(inter), transcript):
        return
    await inter.followup.send(
        t("tickets.done.closed", locale_of(inter), user=f"<@{inter.author.id}>")
    )
    if not ticket.in_channel:
        await archive(sf, ticket, thread_id)
        return
    try:
        await sf.bot.http.delete_channel(int(thread_id), reason=f"Vitrine: ticket #{ticket.id}")
    except disnake.HTTPException as exc:
        log.warning("ticket %s: channel %s not deleted: %s", ticket.id, thread_id, exc)


async def archive(sf: Storefront, ticket: Ticket, thread_id: str) -> None:
    """Archive and lock the thread; locking needs Manage Threads, so without it the thread is
    only archived (its creator, the bot, may do that) and the log says why."""
    http = sf.bot.http
    try:
        await http.edit_channel(int(thread_id), archived=True, locked=True)
        return
    except disnake.Forbidden as exc:
        log.warning("ticket %s: thread %s not locked: %s", ticket.id, thread_id, exc)
    except disnake.HTTPException as exc:
        log.warning("ticket %s: thread %s not archived: %s", ticket.id, thread_id, exc)
        return
    try:
        await http.edit_channel(int(thread_id), archived=True)
    except disnake.HTTPException as exc:
        log.warning("ticket %s: thread %s not archived: %s", ticket.id, thread_id, exc)


async def read_transcript(sf: Storefront, thread_id: str, buyer_id: str) -> list[dict[str, Any]]:
    """The thread's messages, oldest first. Without the Message Content intent Discord sends
    other people's messages with empty text and no attachments (docs/storefront.md)."""
    me = str(sf.bot.user.id) if sf.bot.user else ""
    found: list[dict[str, Any]] = []
    before = None
    while len(found) < tickets.MAX_TRANSCRIPT:
        page = cast(
            list[dict[str, Any]],
            await sf.bot.http.logs_from(int(thread_id), TRANSCRIPT_PAGE, before=before),
        )
        found += page
        if len(page) < TRANSCRIPT_PAGE:
            break
        before = page[-1]["id"]
    lines = []
    for msg in reversed(found):
        author = msg.get("author") or {}
        author_id = str(author.get("id", ""))
        text = msg.get("content") or " ".join(e.get("title") or "" for e in msg.get("embeds") or [])
        lines.append(
            {
                "author": author.get("global_name") or author.get("username") or author_id,
                "author_id": author_id,
                "staff": author_id not in (buyer_id, me),
                "at": datetime.fromisoformat(msg["timestamp"]),
                "text": text,
                "attachments": [a.get("filename", "") for a in msg.get("attachments") or []],
            }
        )
    return lines


_ACTIONS = {
    "resend": resend,
    "replace": replace,
    "refund": refund,
    "refund_ok": refund_confirmed,
    "close": close,
}


def setup(sf: Storefront) -> None:
    sf.route("tko", lambda inter, args: on_open(sf, inter, args))
    sf.route("tkos", lambda inter, args: on_open_select(sf, inter, args))
    sf.route("tk", lambda inter, args: on_staff(sf, inter, args))
    sf.route("tkr", lambda inter, args: on_replace_pick(sf, inter, args))
