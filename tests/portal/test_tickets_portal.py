"""Tickets in the portal and the admin API (issue 17): the seller picks the staff role from what
the bot sees (a foreign role and an out-of-range limit are refused, CSRF checked), the dashboard
shows open tickets and the first-response time, and operators see tickets per store."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.models import AuditLog
from shop import tickets
from shop.models import Account, Order, Tenant, Ticket, TicketSettings
from shop.states import OrderStatus
from tests.helpers.admin import admin_settings, make_instance, make_order, make_variation
from tests.helpers.portal import make_seller, portal_with_discord


@pytest.fixture
async def world(db, redis_url, tmp_path):
    async with portal_with_discord(tmp_path, db, redis_url) as (app, dc):
        yield app, dc


async def _store(app, dc):
    user = await dc.create_user("ana")
    bot = await dc.create_bot("Loja Ana")
    guild = await dc.create_guild(
        "Servidor Ana",
        owner_id=user["id"],
        channels=["loja", "suporte"],
        roles=["Equipe"],
        bots=[bot],
    )
    seller = await make_seller(app, "Loja Ana")
    await Account.filter(id=seller.account.id).update(discord_id=user["id"])
    assert (await seller.post("/bot", {"token": bot.token})).status_code == 302
    await Tenant.filter(id=seller.tenant.id).update(
        guild_id=guild.id, support_channel_id=guild.channel("suporte")
    )
    return seller, guild


async def test_seller_picks_the_staff_role_and_the_daily_limit(world):
    app, dc = world
    seller, guild = await _store(app, dc)
    other = await dc.create_guild("Outro", roles=["Intrusa"])
    category, foreign = [
        (await dc.call("POST", f"/_sandbox/guilds/{g.id}/channels", json={"name": n, "type": 4}))[
            "id"
        ]
        for g, n in ((guild, "Tickets"), (other, "Alheia"))
    ]
    status, page = await seller.text("/tickets/settings")
    assert status == 200 and "@Equipe" in page and "#suporte" in page and "Tickets" in page
    for bad in ({"staff_role": other.role("Intrusa")}, {"category": foreign}):
        refused = await seller.post("/tickets/settings", {"per_day": "3", **bad})
        assert refused.status_code == 400
    too_many = await seller.post(
        "/tickets/settings", {"staff_role": guild.role("Equipe"), "per_day": "999"}
    )
    assert too_many.status_code == 400
    no_csrf = await seller.client.post(
        "/tickets/settings", form={"staff_role": guild.role("Equipe"), "per_day": "5"}
    )
    assert no_csrf.status_code in (400, 403)
    assert await TicketSettings.filter(tenant_id=seller.tenant.id).count() == 0
    saved = await seller.post(
        "/tickets/settings",
        {"staff_role": guild.role("Equipe"), "category": category, "per_day": "5"},
    )
    assert saved.status_code == 302
    chosen = await tickets.settings_of(seller.tenant.id)
    assert (chosen.staff_role_id, chosen.category_id, chosen.per_buyer_per_day) == (
        guild.role("Equipe"),
        category,
        5,
    )
    assert await AuditLog.filter(action="tenant.ticket_settings").count() == 1


async def test_dashboard_shows_open_tickets_and_first_response(world):
    app, dc = world
    seller, _guild = await _store(app, dc)
    instance = await make_instance(seller.tenant)
    variation = await make_variation(seller.tenant)
    order = await make_order(variation, instance=instance, status=OrderStatus.DELIVERED)
    ticket = await tickets.open_ticket(seller.tenant.id, order.id, order.buyer_discord_id, "b")
    opened = (await Ticket.get(id=ticket.id)).opened_at
    await Ticket.filter(id=ticket.id).update(first_response_at=opened + timedelta(minutes=6))
    status, page = await seller.text("/")
    assert status == 200
    assert 'id="tickets-open">1<' in page and "6.0 min" in page


async def test_admin_counts_tickets_per_store(db, redis_url, tmp_path):
    from tests.helpers.admin import TOKEN
    from web.admin import create_app

    app = create_app(admin_settings(tmp_path, db, redis_url))
    async with app.test_app():
        counts = {}
        for name, n in (("A", 2), ("B", 1)):
            owner = await Account.create(discord_id=f"{len(counts) + 1}" * 17, username=name)
            tenant = await Tenant.create(owner=owner, name=name, support_channel_id="1" * 18)
            instance = await make_instance(tenant)
            variation = await make_variation(tenant)
            for _ in range(n):
                order = await make_order(variation, instance=instance, status=OrderStatus.PAID)
                await tickets.open_ticket(tenant.id, order.id, order.buyer_discord_id, "b")
            counts[tenant.id] = n
        client = app.test_client()
        resp = await client.get(
            "/api/indicators/tickets?period=7d", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert resp.status_code == 200
        body = await resp.get_json()
        got = {s["tenant_id"]: (s["opened"], s["open_now"]) for s in body["stores"]}
        assert got == {t: (n, n) for t, n in counts.items()}
        assert await Order.all().count() == 3
