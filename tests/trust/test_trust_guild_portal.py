"""The seller's side of "a bot serves only its store's guild" (issue 13): the Public Bot
warning, foreign-server leaves on the dashboard, one bot per store."""

from __future__ import annotations

import pytest
from tortoise.exceptions import IntegrityError

from fleet.models import Alert, AlertKind, BotInstance
from shop.models import Account, Tenant
from tests.helpers.portal import make_seller, portal_with_discord
from web.portal import onboarding


@pytest.fixture
async def env(db, redis_url, tmp_path):
    """The portal against the Discord stand-in (real sockets)."""
    async with portal_with_discord(tmp_path, db, redis_url) as (app, dc):
        yield app, dc


async def test_one_bot_cannot_be_attached_to_two_stores_in_the_database(db):
    owner = await Account.create(discord_id="1001", username="a")
    first = await Tenant.create(owner=owner, name="A")
    second = await Tenant.create(owner=owner, name="B")
    await BotInstance.create(tenant=first, token_enc="x", application_id="4242")
    with pytest.raises(IntegrityError):
        await BotInstance.create(tenant=second, token_enc="y", application_id="4242")
    # several stores without a bot yet are fine
    await BotInstance.create(tenant=second, token_enc="z")
    await BotInstance.create(tenant=first, token_enc="w")


async def test_two_stores_onboarding_the_same_bot_at_once_get_a_clear_error(env, monkeypatch):
    app, dc = env
    bot = await dc.create_bot("Loja Bot")
    first, second = await make_seller(app, "Loja A"), await make_seller(app, "Loja B")
    real = onboarding._store_token

    async def racing(instance, identity, token):  # the other store commits after our check
        await BotInstance.create(
            tenant=first.tenant, token_enc="x", application_id=identity.application_id
        )
        return await real(instance, identity, token)

    monkeypatch.setattr(onboarding, "_store_token", racing)
    resp = await second.post("/bot", {"token": bot.token})
    assert resp.status_code == 409
    assert "Este bot já está conectado a outra loja." in await resp.get_data(as_text=True)
    owners = await BotInstance.filter(application_id=bot.application_id).values_list(
        "tenant_id", flat=True
    )
    assert owners == [first.tenant.id]


async def test_dashboard_warns_with_the_steps_while_the_bot_is_public(env):
    app, dc = env
    bot = await dc.create_bot("Loja Bot")  # Discord's default: a public application
    seller = await make_seller(app)
    assert (await seller.post("/bot", {"token": bot.token})).status_code == 302
    instance = await BotInstance.get(tenant_id=seller.tenant.id)
    assert instance.bot_public is True
    _, html = await seller.text("/dashboard/live")
    assert 'id="bot-public"' in html
    assert "Developer Portal" in html and "Public Bot" in html and "Save Changes" in html

    await dc.set_bot_public(bot, False)  # the seller follows the steps; read again on save
    assert (await seller.post("/bot", {"token": bot.token})).status_code == 302
    await instance.refresh_from_db()
    assert instance.bot_public is False
    _, html = await seller.text("/dashboard/live")
    assert 'id="bot-public"' not in html


async def test_dashboard_warning_is_in_english_for_an_english_seller(env):
    app, dc = env
    bot = await dc.create_bot("Shop Bot")
    seller = await make_seller(app, locale="en")
    await seller.post("/bot", {"token": bot.token})
    _, html = await seller.text("/dashboard/live")
    assert 'id="bot-public"' in html and "turn off" in html and "Public Bot" in html


async def test_dashboard_lists_the_servers_the_bot_left_for_this_store_only(env):
    from fleet.guildscope import record_foreign_guild

    app, _ = env
    seller, other = await make_seller(app, "Loja A"), await make_seller(app, "Loja B")
    mine = await BotInstance.create(tenant=seller.tenant, token_enc="x", application_id="77")
    theirs = await BotInstance.create(tenant=other.tenant, token_enc="x", application_id="78")
    await record_foreign_guild(mine.id, seller.tenant.id, "555000111", "Servidor do atacante", 12)
    await record_foreign_guild(theirs.id, other.tenant.id, "555000222", "Outro servidor", 3)
    alert = await Alert.get(tenant_id=seller.tenant.id)
    assert alert.kind == AlertKind.FOREIGN_GUILD and alert.details["guild_id"] == "555000111"
    _, html = await seller.text("/dashboard/live")
    assert 'id="foreign-guilds"' in html
    assert "Servidor do atacante" in html and "555000111" in html
    assert "Outro servidor" not in html and "555000222" not in html
