"""Onboarding without typing ids (issue 18): the portal lists what the store's bot sees in
Discord (the sandbox, over real sockets), saves what the seller picks, refuses foreign ids,
and checks the bot's permissions."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest

from core.audit import AuditLog
from fleet.models import BotInstance
from shop.bot_requirements import StoreFeatures, invite_permissions
from shop.discord_perms import SEND_MESSAGES
from shop.models import Account, Tenant
from tests.helpers.portal import make_seller, portal_with_discord

MANAGE_GUILD = 1 << 5


@pytest.fixture
async def world(db, redis_url, tmp_path):
    async with portal_with_discord(tmp_path, db, redis_url) as (app, dc):
        yield app, dc


async def _store_with_bot(app, dc, name="Ana"):
    """A seller (logged in) whose store's bot is in her own server and in a stranger's."""
    user = await dc.create_user(name.lower())
    bot = await dc.create_bot(f"Loja {name}")
    guild = await dc.create_guild(
        f"Servidor {name}",
        owner_id=user["id"],
        channels=["loja", "vendas", "suporte", "avaliacoes"],
        roles=["Comprador"],
    )
    # added with what the portal's invite link asks for once a buyer role is picked
    await dc.add_bot_to_guild(guild, bot, invite_permissions(StoreFeatures(buyer_role=True)))
    seller = await make_seller(app, f"Loja {name}")
    await Account.filter(id=seller.account.id).update(discord_id=user["id"])
    resp = await seller.post("/bot", {"token": bot.token})
    assert resp.status_code == 302
    return seller, user, bot, guild


async def _tenant(seller) -> Tenant:
    return await Tenant.get(id=seller.tenant.id)


async def test_pickers_list_what_the_bot_sees_and_save_the_choice(world):
    app, dc = world
    seller, _user, bot, guild = await _store_with_bot(app, dc)
    stranger = await dc.create_guild("Servidor de outro", channels=["geral"], bots=[bot])
    elsewhere = await dc.create_guild("Sem o bot", owner_id=_user["id"])
    status, page = await seller.text("/bot/server")
    assert status == 200
    assert "Servidor Ana" in page and "Servidor de outro" in page
    assert "Sem o bot" not in page  # only guilds the bot is in
    # The seller adds the bot there: the short cache answers until "refresh the list".
    await dc.add_bot_to_guild(elsewhere, bot)
    assert "Sem o bot" not in (await seller.text("/bot/server"))[1]
    assert "Sem o bot" in (await seller.text("/bot/server?fresh=1"))[1]
    elsewhere = await dc.create_guild("Sem o bot 2", owner_id=_user["id"])
    # Not in the bot's guilds, or not the seller's to manage: refused.
    resp = await seller.post("/bot/server", {"guild_id": elsewhere.id})
    assert resp.status_code == 400
    resp = await seller.post("/bot/server", {"guild_id": stranger.id})
    assert resp.status_code == 403
    assert "Gerenciar Servidor" in await resp.get_data(as_text=True)
    assert (await _tenant(seller)).guild_id is None
    resp = await seller.post("/bot/server", {"guild_id": guild.id})
    assert resp.status_code == 302 and resp.headers["Location"] == "/bot/channels"
    assert (await _tenant(seller)).guild_id == guild.id
    status, page = await seller.text("/bot/channels")
    assert status == 200
    for channel in ("#loja", "#vendas", "#suporte", "#avaliacoes"):
        assert channel in page
    assert "@Comprador" in page and "@Loja Ana" not in page  # the bot's managed role: no
    resp = await seller.post(
        "/bot/channels",
        {
            "sales_log": guild.channel("vendas"),
            "support": guild.channel("suporte"),
            "feedback": guild.channel("avaliacoes"),
            "buyer_role": guild.role("Comprador"),
        },
    )
    assert resp.status_code == 302
    tenant = await _tenant(seller)
    assert tenant.sales_log_channel_id == guild.channel("vendas")
    assert tenant.support_channel_id == guild.channel("suporte")
    assert tenant.feedback_channel_id == guild.channel("avaliacoes")
    assert tenant.buyer_role_id == guild.role("Comprador")
    assert await AuditLog.filter(action="tenant.discord_channels_chosen").exists()
    assert (await BotInstance.get(tenant_id=tenant.id)).config_version >= 2  # bot reloads
    status, page = await seller.text("/bot/channels")
    assert 'id="check-ok"' in page


async def test_a_seller_with_manage_server_may_pick_a_server_she_does_not_own(world):
    app, dc = world
    seller, user, bot, _guild = await _store_with_bot(app, dc)
    team = await dc.create_guild("Equipe", channels=["geral"], bots=[bot])
    await dc.call(
        "POST",
        f"/_sandbox/guilds/{team.id}/roles",
        json={"name": "Gerente", "permissions": MANAGE_GUILD},
    )
    team = await dc.guild(team.id)
    await dc.add_member(team, user["id"], ["Gerente"])
    resp = await seller.post("/bot/server", {"guild_id": team.id})
    assert resp.status_code == 302
    assert (await _tenant(seller)).guild_id == team.id


async def test_foreign_ids_posted_by_hand_are_refused(world):
    app, dc = world
    seller, _user, _bot, guild = await _store_with_bot(app, dc, "Ana")
    other, _u2, _bot2, other_guild = await _store_with_bot(app, dc, "Bia")
    # Bia's server is not in Ana's bot's guilds.
    resp = await seller.post("/bot/server", {"guild_id": other_guild.id})
    assert resp.status_code == 400
    assert "não está nesse servidor" in await resp.get_data(as_text=True)
    assert (await seller.post("/bot/server", {"guild_id": guild.id})).status_code == 302
    for field, value in (
        ("sales_log", other_guild.channel("vendas")),
        ("buyer_role", other_guild.role("Comprador")),
        ("support", guild.id),  # a guild id is not a channel
    ):
        resp = await seller.post("/bot/channels", {field: value})
        assert resp.status_code == 400, field
    for bad in ("12", "x" * 500, "9" * 400, "１２３４５６７８９０１２３４５６７"):
        resp = await seller.post("/bot/channels", {"sales_log": bad})
        assert resp.status_code == 400, bad
    tenant = await _tenant(seller)
    assert tenant.sales_log_channel_id is None and tenant.buyer_role_id is None
    # Without the CSRF token nothing is saved.
    resp = await seller.client.post("/bot/server", form={"guild_id": other_guild.id})
    assert resp.status_code == 403
    # Bia never sees Ana's server in her list.
    _, page = await other.text("/bot/server")
    assert "Servidor Ana" not in page and "Servidor Bia" in page


async def test_permission_check_reports_a_send_messages_overwrite_until_it_is_fixed(world):
    app, dc = world
    seller, _user, bot, guild = await _store_with_bot(app, dc)
    await seller.post("/bot/server", {"guild_id": guild.id})
    vendas = guild.channel("vendas")
    await seller.post("/bot/channels", {"sales_log": vendas, "buyer_role": guild.role("Comprador")})
    _, page = await seller.text("/bot/channels")
    assert 'id="check-ok"' in page
    # A server admin denies Send Messages to @everyone in #vendas (the @everyone role's id is
    # the guild's id).
    await dc.set_overwrite(vendas, guild.id, deny=SEND_MESSAGES)
    _, page = await seller.text("/bot/channels")
    assert 'id="check-ok"' in page  # the short cache still answers...
    resp = await seller.post("/bot/check")  # ...until "check again"
    assert resp.status_code == 302
    _, page = await seller.text("/bot/channels")
    problem = re.search(
        r'<li class="problem" data-code="channel_missing" data-where="(\d+)">(.*?)</li>', page, re.S
    )
    assert problem and problem.group(1) == vendas, page
    assert "Enviar mensagens" in problem.group(2) and "Inserir links" in problem.group(2)
    assert "Editar canal" in problem.group(2)  # the fix
    # The admin allows Send Messages for the bot itself: a member overwrite wins.
    await dc.set_overwrite(vendas, bot.user_id, member=True, allow=SEND_MESSAGES)
    await seller.post("/bot/check")
    _, page = await seller.text("/bot/channels")
    assert 'id="check-ok"' in page
    # The buyer role moved above the bot's role: the bot could not give it.
    await dc.edit_role(guild, guild.role("Comprador"), position=99)
    await seller.post("/bot/check")
    _, page = await seller.text("/bot/channels")
    assert 'data-code="role_too_high"' in page and "arraste @Loja Ana para cima" in page


async def test_reads_wait_out_a_429_and_fall_back_to_typed_ids_when_discord_fails(world):
    app, dc = world
    seller, _user, bot, guild = await _store_with_bot(app, dc)
    await dc.add_fault_rule(
        bot, "ratelimit", method="GET", path="/users/@me/guilds", retry_after=0.3
    )
    status, page = await seller.text("/bot/server")
    assert status == 200 and "Servidor Ana" in page
    tries = await dc.requests(bot, method="GET", path="/users/@me/guilds")
    assert [r["status"] for r in tries][-2:] == [429, 200]
    await dc.add_fault_rule(
        bot, "error", method="GET", path="/users/@me/guilds", count=10, status=500
    )
    await seller.post("/bot/check")  # forget the cached list
    status, page = await seller.text("/bot/server")
    assert status == 200 and 'id="read-error"' in page and 'id="f-guild_id"' in page
    assert (
        await seller.post("/bot/server", {"guild_id": "１２３４５６７８９０１２３４５６７"})
    ).status_code == 400
    resp = await seller.post("/bot/server", {"guild_id": guild.id})
    assert resp.status_code == 302
    assert (await _tenant(seller)).guild_id == guild.id


async def test_invite_asks_for_exactly_what_the_features_need(world):
    app, dc = world
    base = 1024 | 2048 | 16384 | 32768 | 65536  # view, send, embed, attach, history
    threads = (1 << 36) | (1 << 38)
    manage_threads = 1 << 34  # locks a closed ticket's thread
    assert invite_permissions(StoreFeatures()) == base | threads | manage_threads == 360777370624
    assert invite_permissions(StoreFeatures(buyer_role=True)) == 360777370624 | (1 << 28)
    assert invite_permissions(StoreFeatures(private_threads=False, tickets=False)) == base
    seller, _user, _bot, guild = await _store_with_bot(app, dc)

    async def asked() -> int:
        _, page = await seller.text("/bot")
        href = re.search(r'id="invite-link" href="([^"]+)"', page) or re.search(
            r'href="([^"]+)" role="button" id="invite-link"', page
        )
        assert href, page
        query = parse_qs(urlsplit(href.group(1).replace("&amp;", "&")).query)
        return int(query["permissions"][0])

    assert await asked() == 360777370624  # no buyer role yet: no Manage Roles
    await seller.post("/bot/server", {"guild_id": guild.id})
    await seller.post("/bot/channels", {"buyer_role": guild.role("Comprador")})
    assert await asked() == 360777370624 | (1 << 28)
