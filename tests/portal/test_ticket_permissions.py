"""What tickets ask of the bot (issue 17): Manage Threads in the support channel (a closed
ticket's thread is locked), Manage Channels in the category when tickets are private channels.
The invite link asks for them, the check names what is missing, and the ticket settings page
says it; a bot invited with the link lacks nothing."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest

from shop.bot_requirements import (
    Choices,
    StoreFeatures,
    check,
    invite_permissions,
)
from shop.discord_perms import MANAGE_CHANNELS, MANAGE_THREADS
from shop.models import Account, Tenant
from tests.helpers.portal import make_seller, portal_with_discord
from tests.shop.test_discord_perms import _snapshot

OLD_INVITE = 268553216 | (1 << 31) | (1 << 36) | (1 << 38)  # an old invite's permissions


def test_invite_asks_for_manage_threads_and_in_category_mode_manage_channels():
    assert invite_permissions(StoreFeatures()) & MANAGE_THREADS
    assert not invite_permissions(StoreFeatures()) & MANAGE_CHANNELS
    assert invite_permissions(StoreFeatures(ticket_channels=True)) & MANAGE_CHANNELS


def test_check_names_manage_threads_in_the_support_channel_and_the_category_gone():
    lacking = invite_permissions(StoreFeatures()) & ~MANAGE_THREADS
    [problem] = check(_snapshot(lacking), Choices({"support": "support"}))
    assert (problem.code, problem.where, problem.permissions) == (
        "channel_missing",
        "support",
        ("manage_threads",),
    )
    [gone] = check(_snapshot(lacking | MANAGE_THREADS), Choices(ticket_category_id="gone"))
    assert (gone.code, gone.where, gone.where_name) == ("channel_gone", "gone", "ticket_category")


@pytest.fixture
async def world(db, redis_url, tmp_path):
    async with portal_with_discord(tmp_path, db, redis_url) as (app, dc):
        yield app, dc


async def _store(app, dc, permissions: int):
    """A store whose bot was added to its server with `permissions`, tickets in #suporte and
    a "Tickets" category."""
    user = await dc.create_user("ana")
    bot = await dc.create_bot("Loja Ana")
    guild = await dc.create_guild(
        "Servidor Ana", owner_id=user["id"], channels=["loja", "suporte"], roles=["Equipe"]
    )
    await dc.add_bot_to_guild(guild, bot, permissions)
    path = f"/_sandbox/guilds/{guild.id}/channels"
    category = (await dc.call("POST", path, json={"name": "Tickets", "type": 4}))["id"]
    seller = await make_seller(app, "Loja Ana")
    await Account.filter(id=seller.account.id).update(discord_id=user["id"])
    assert (await seller.post("/bot", {"token": bot.token})).status_code == 302
    await Tenant.filter(id=seller.tenant.id).update(
        guild_id=guild.id, support_channel_id=guild.channel("suporte")
    )
    return seller, guild, category


async def _invite_permissions(seller) -> int:
    _, page = await seller.text("/bot")
    href = re.search(r'href="([^"]+)" role="button" id="invite-link"', page)
    assert href, page
    return int(parse_qs(urlsplit(href.group(1).replace("&amp;", "&")).query)["permissions"][0])


async def test_settings_page_names_what_a_bot_from_an_old_invite_lacks(world):
    app, dc = world
    seller, guild, category = await _store(app, dc, OLD_INVITE)
    _, page = await seller.text("/tickets/settings")
    problems = page.split('id="ticket-problems"')[1].split("</ul>")[0]
    assert "Em #suporte, o bot não tem: Gerenciar tópicos." in problems
    assert "Gerenciar canais" not in problems  # no category chosen yet
    assert not await _invite_permissions(seller) & MANAGE_CHANNELS
    saved = await seller.post("/tickets/settings", {"category": category, "per_day": "3"})
    assert saved.status_code == 302
    _, page = await seller.text("/tickets/settings")
    assert "Em #Tickets, o bot não tem: Gerenciar canais." in page
    assert await _invite_permissions(seller) & MANAGE_CHANNELS  # the link now asks for it


async def test_a_bot_invited_with_the_link_lacks_nothing_for_tickets(world):
    app, dc = world
    asked = invite_permissions(StoreFeatures(ticket_channels=True))
    seller, _guild, category = await _store(app, dc, asked)
    await seller.post("/tickets/settings", {"category": category, "per_day": "3"})
    _, page = await seller.text("/tickets/settings")
    assert 'id="tickets-check-ok"' in page and 'id="ticket-problems"' not in page
