"""Buyer support tickets (issue 17): open one on a paid order, record what the staff did, close
it with its transcript. Discord-free: the worker opens the thread and reads the messages.

Rules, checked here so every caller shares them: only the order's buyer opens a ticket, only on
a paid order of the store; a blocked buyer is refused (`BuyerBlocked`, the checkout's neutral
message); one open ticket per order (a unique `open_key`, so two processes cannot both open
one); at most `per_buyer_per_day` tickets per buyer in 24 h. Every step is an audit record on
the order (`ticket.*`), which is what the portal's order timeline shows.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.functions import Count
from tortoise.transactions import in_transaction

from core import audit
from shop.blocklist import is_blocked
from shop.buyer_limits import BuyerBlocked
from shop.errors import ShopError
from shop.models import Order, Tenant, Ticket, TicketSettings, TicketStatus
from shop.states import PAID_ORDER_STATES, OrderStatus

DEFAULT_PER_DAY = 3
PER_DAY_LIMIT = 20  # the most a store may allow
MAX_TRANSCRIPT = 500  # messages kept per ticket
MAX_TEXT = 2000  # characters kept per message (Discord's own limit for a message)
STATS_WINDOW = timedelta(days=30)


class TicketError(ShopError):
    code = "ticket_error"
    message_key = "tickets.error.generic"


class TicketNotAllowed(TicketError):
    """Not this buyer's order, not this store's, or nothing was paid."""

    code = "ticket_not_allowed"
    message_key = "tickets.error.not_allowed"


class TicketAlreadyOpen(TicketError):
    code = "ticket_already_open"
    message_key = "tickets.error.already_open"


class TooManyTickets(TicketError):
    code = "too_many_tickets"
    message_key = "tickets.error.too_many"


class TicketsOff(TicketError):
    """The store has no support channel: tickets cannot be opened."""

    code = "tickets_off"
    message_key = "tickets.error.off"


class TicketRefused(BuyerBlocked):
    """The buyer is on the store's blocklist; the message does not say so, on purpose."""

    code = "ticket_refused"
    message_key = "tickets.error.refused"


class TicketClosed(TicketError):
    code = "ticket_closed"
    message_key = "tickets.error.closed"


class StaffOnly(TicketError):
    code = "ticket_staff_only"
    message_key = "tickets.error.staff_only"


def mask(text: str) -> str:
    """A delivered item as a ticket may show it: enough to tell items apart, never usable
    (the first 3 and last 2 characters of a long item, nothing of a short one)."""
    value = text.strip()
    if len(value) < 12:
        return "•" * 6
    return f"{value[:3]}•••{value[-2:]}"


async def settings_of(tenant_id: int) -> TicketSettings:
    """The store's ticket settings; the defaults (unsaved) when the seller chose none."""
    found = await TicketSettings.get_or_none(tenant_id=tenant_id)
    return found or TicketSettings(tenant_id=tenant_id, per_buyer_per_day=DEFAULT_PER_DAY)


async def save_settings(
    tenant: Tenant,
    staff_role_id: str | None,
    per_day: int,
    actor: str,
    category_id: str | None = None,
) -> None:
    """Set the staff role and the category (ids already checked against the guild; no
    category: threads in the support channel) and the daily limit."""
    per_day = max(1, min(int(per_day), PER_DAY_LIMIT))
    async with in_transaction() as conn:
        row = await TicketSettings.filter(tenant_id=tenant.id).using_db(conn).first()
        before = None
        if row is None:
            row = TicketSettings(tenant_id=tenant.id)
        else:
            before = _settings_view(row)
        row.staff_role_id = staff_role_id
        row.per_buyer_per_day = per_day
        row.category_id = category_id
        await row.save(using_db=conn)
        await audit.record(
            actor,
            "tenant.ticket_settings",
            "tenant",
            tenant.id,
            tenant_id=tenant.id,
            before=before,
            after=_settings_view(row),
            using_db=conn,
        )


def _settings_view(row: TicketSettings) -> dict[str, Any]:
    return {
        "staff_role_id": row.staff_role_id,
        "category_id": row.category_id,
        "per_buyer_per_day": row.per_buyer_per_day,
    }


async def enabled(tenant: Tenant) -> bool:
    """Tickets are on: the store picked a support channel or a ticket category."""
    return bool(tenant.support_channel_id) or bool((await settings_of(tenant.id)).category_id)


async def open_ticket(tenant_id: int, order_id: int, buyer_id: str, actor: str) -> Ticket:
    """Open a ticket on the buyer's paid order (see the module's rules for what is refused)."""
    tenant = await Tenant.get(id=tenant_id)
    settings = await settings_of(tenant_id)
    if not (tenant.support_channel_id or settings.category_id):
        raise TicketsOff(f"store {tenant_id} has no support channel or ticket category")
    per_day = settings.per_buyer_per_day
    try:
        async with in_transaction() as conn:
            order = (
                await Order.filter(id=order_id, tenant_id=tenant_id)
                .using_db(conn)
                .select_for_update()
                .first()
            )
            if (
                order is None
                or order.buyer_discord_id != buyer_id
                or OrderStatus(order.status) not in PAID_ORDER_STATES | {OrderStatus.REFUNDED}
            ):
                raise TicketNotAllowed(f"order {order_id} is not {buyer_id}'s paid order")
            if await is_blocked(tenant_id, buyer_id, using_db=conn):
                raise TicketRefused(f"buyer {buyer_id} is blocked in store {tenant_id}")
            since = datetime.now(UTC) - timedelta(days=1)
            today = (
                await Ticket.filter(
                    tenant_id=tenant_id, buyer_discord_id=buyer_id, opened_at__gte=since
                )
                .using_db(conn)
                .count()
            )
            if today >= per_day:
                raise TooManyTickets(f"buyer {buyer_id}: {today} tickets today", maximum=per_day)
            ticket = await Ticket.create(
                tenant_id=tenant_id,
                order_id=order.id,
                buyer_discord_id=buyer_id,
                open_key=order.id,
                using_db=conn,
            )
            await _audit(ticket, "ticket.opened", actor, {"ticket_id": ticket.id}, conn)
    except IntegrityError:
        raise TicketAlreadyOpen(f"order {order_id} has an open ticket") from None
    return ticket


async def open_ticket_of_order(tenant_id: int, order_id: int) -> Ticket | None:
    return await Ticket.get_or_none(tenant_id=tenant_id, open_key=order_id)


async def attach_thread(ticket: Ticket, thread_id: str, in_channel: bool = False) -> None:
    """Note the Discord thread (or private channel) the ticket lives in."""
    ticket.thread_id, ticket.in_channel = str(thread_id), in_channel
    await Ticket.filter(id=ticket.id).update(thread_id=ticket.thread_id, in_channel=in_channel)


async def abandon(ticket: Ticket, actor: str, why: str) -> None:
    """The thread could not be made: close the ticket at once so the buyer may try again."""
    await close_ticket(ticket, actor, [], reason=why)


async def get_open(tenant_id: int, ticket_id: int) -> Ticket:
    """The store's open ticket; `TicketClosed` when it was closed (or is not this store's)."""
    ticket = await Ticket.get_or_none(id=ticket_id, tenant_id=tenant_id)
    if ticket is None or ticket.status != TicketStatus.OPEN:
        raise TicketClosed(f"ticket {ticket_id} is not open")
    return ticket


async def record_action(
    ticket: Ticket, action: str, actor: str, details: dict[str, Any] | None = None
) -> None:
    """Audit a staff action (`ticket.<action>` on the order); the first one is the first
    response, unless a staff message came earlier (known at close)."""
    async with in_transaction() as conn:
        await (
            Ticket.filter(id=ticket.id, first_response_at__isnull=True)
            .using_db(conn)
            .update(first_response_at=datetime.now(UTC))
        )
        await _audit(
            ticket, f"ticket.{action}", actor, {"ticket_id": ticket.id, **(details or {})}, conn
        )


async def close_ticket(
    ticket: Ticket, actor: str, transcript: list[dict[str, Any]], reason: str = ""
) -> bool:
    """Close the ticket and keep its transcript; False when it was closed already (a
    repeated close changes nothing)."""
    kept = [_clean(m) for m in transcript[:MAX_TRANSCRIPT]]
    now = datetime.now(UTC)
    staff_times = [m["at"] for m in kept if m["staff"] and m["at"]]
    async with in_transaction() as conn:
        closed = await (
            Ticket.filter(id=ticket.id, status=TicketStatus.OPEN)
            .using_db(conn)
            .update(
                status=TicketStatus.CLOSED,
                open_key=None,
                closed_at=now,
                closed_by=actor[:100],
                transcript=kept,
            )
        )
        if not closed:
            return False
        if staff_times:
            first = datetime.fromisoformat(min(staff_times))
            fresh = await Ticket.filter(id=ticket.id).using_db(conn).get()
            if fresh.first_response_at is None or first < fresh.first_response_at:
                await Ticket.filter(id=ticket.id).using_db(conn).update(first_response_at=first)
        details = {"ticket_id": ticket.id, "messages": len(kept)}
        if reason:
            details["reason"] = reason
        await _audit(ticket, "ticket.closed", actor, details, conn)
    return True


def _clean(message: dict[str, Any]) -> dict[str, Any]:
    """One transcript line, bounded: author, time (ISO), text, attachments' names."""
    at = message.get("at")
    return {
        "author": str(message.get("author") or "")[:100],
        "author_id": str(message.get("author_id") or "")[:32],
        "staff": bool(message.get("staff")),
        "at": at.isoformat() if isinstance(at, datetime) else str(at or ""),
        "text": str(message.get("text") or "")[:MAX_TEXT],
        "attachments": [str(a)[:200] for a in (message.get("attachments") or [])][:10],
    }


async def _audit(ticket: Ticket, action: str, actor: str, after: dict[str, Any], conn: Any) -> None:
    await audit.record(
        actor,
        action,
        "order",
        ticket.order_id,
        tenant_id=ticket.tenant_id,
        after=after,
        using_db=conn,
    )


async def tickets_of_order(tenant_id: int, order_id: int) -> list[Ticket]:
    """The order's tickets, oldest first (the portal's order page)."""
    return await Ticket.filter(tenant_id=tenant_id, order_id=order_id).order_by("id")


@dataclass(frozen=True)
class TicketStats:
    open: int
    answered: int  # tickets of the last 30 days with a first response
    median_first_response_s: float | None


async def stats(tenant_id: int, now: datetime | None = None) -> TicketStats:
    """Open tickets and the median first-response time of the last 30 days (the dashboard)."""
    since = (now or datetime.now(UTC)) - STATS_WINDOW
    open_count = await Ticket.filter(tenant_id=tenant_id, status=TicketStatus.OPEN).count()
    rows = await Ticket.filter(
        tenant_id=tenant_id, opened_at__gte=since, first_response_at__isnull=False
    ).values_list("opened_at", "first_response_at")
    waits = [_wait(opened, answered) for opened, answered in rows]
    return TicketStats(open_count, len(waits), statistics.median(waits) if waits else None)


def _wait(opened: datetime, answered: datetime) -> float:
    return max(0.0, (answered - opened).total_seconds())


@dataclass(frozen=True)
class StoreTickets:
    tenant_id: int
    opened: int  # in the window
    open_now: int
    median_first_response_s: float | None


async def per_store(window: timedelta, limit: int = 100) -> list[StoreTickets]:
    """Tickets per store (the admin's indicators): most opened in `window` first."""
    since = datetime.now(UTC) - window
    rows = await Ticket.filter(opened_at__gte=since).values_list(
        "tenant_id", "opened_at", "first_response_at"
    )
    opened: dict[int, int] = {}
    waits: dict[int, list[float]] = {}
    for tenant_id, at, answered in rows:
        opened[tenant_id] = opened.get(tenant_id, 0) + 1
        if answered is not None:
            waits.setdefault(tenant_id, []).append(_wait(at, answered))
    open_now = dict(
        await Ticket.filter(status=TicketStatus.OPEN)
        .group_by("tenant_id")
        .annotate(n=Count("id"))
        .values_list("tenant_id", "n")
    )
    stores = sorted(set(opened) | set(open_now), key=lambda t: (-opened.get(t, 0), t))[:limit]
    return [
        StoreTickets(
            int(t),
            opened.get(t, 0),
            int(open_now.get(t, 0)),
            statistics.median(waits[t]) if t in waits else None,
        )
        for t in stores
    ]
