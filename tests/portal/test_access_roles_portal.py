"""Roles per variation and staff grants in the portal (issue 16), against the Discord sandbox
over real sockets: the picker lists what the bot sees, and every role the bot could not give
is refused at save time with the reason, nothing saved."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from core.models import AuditLog
from shop.discord_perms import SEND_MESSAGES, VIEW_CHANNEL
from shop.models import AccessGrant, AccessStatus, Product, Variation
from tests.helpers.portal import portal_with_discord
from tests.portal.test_onboarding_pickers import _store_with_bot


@pytest.fixture
async def world(db, redis_url, tmp_path):
    async with portal_with_discord(tmp_path, db, redis_url) as (app, dc):
        yield app, dc


async def _post(seller, path, form):
    """POST with repeated keys kept (Quart's test client sends only a MultiDict's first value
    per key: `urlencode(form)`), as a browser sends a multi-select."""
    pairs = [("csrf_token", await seller.csrf())]
    for key, value in form.items():
        pairs += [(key, v) for v in (value if isinstance(value, list) else [value])]
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    return await seller.client.post(path, data=urlencode(pairs).encode(), headers=headers)


async def _store_with_variation(app, dc):
    seller, _user, bot, guild = await _store_with_bot(app, dc)
    # Added after the bot joined: Discord puts a new role on top, above the bot's role.
    await dc.call("POST", f"/_sandbox/guilds/{guild.id}/roles", json={"name": "Topo"})
    guild = await dc.guild(guild.id)
    assert (await seller.post("/bot/server", {"guild_id": guild.id})).status_code == 302
    product = await Product.create(tenant_id=seller.tenant.id, name="VIP")
    variation = await Variation.create(
        tenant_id=seller.tenant.id, product=product, name="Mensal", price_cents=2990
    )
    return seller, bot, guild, variation


async def _access(variation_id: int) -> tuple[list[str], int | None]:
    v = await Variation.get(id=variation_id)
    return list(v.role_ids), v.duration_days


async def test_a_role_the_bot_cannot_give_is_refused_at_save_time_and_nothing_is_saved(world):
    app, dc = world
    seller, bot, guild, variation = await _store_with_variation(app, dc)
    path = f"/variations/{variation.id}/access"
    status, page = await seller.text(f"/variations/{variation.id}/edit")
    assert status == 200 and 'id="access-form"' in page
    assert "@Comprador" in page and "@Topo — o bot não pode dar" in page
    assert "@Loja Ana" not in page  # the bot's own managed role is not offered
    cases = [
        (guild.role("Topo"), "arraste @Loja Ana para cima de @Topo"),  # above the bot
        (guild.role("Loja Ana"), "gerenciado por uma integração"),  # managed
        (guild.id, "@everyone não pode ser dado"),  # @everyone is the guild's id
        ("123456789012345678", "não existe mais"),  # not a role of this server
    ]
    for role_id, reason in cases:
        resp = await _post(
            seller, path, {"role_ids": [guild.role("Comprador"), role_id], "duration": "30"}
        )
        text = await resp.get_data(as_text=True)
        assert resp.status_code == 400, role_id
        assert reason in text, (role_id, text[-3000:])
    assert await _access(variation.id) == ([], None)
    assert not await AuditLog.filter(action="variation.access_updated").exists()
    # Bounded before parsing: too many roles, non-ids, bad durations.
    for form in (
        {"role_ids": [str(10**17 + i) for i in range(11)]},
        {"role_ids": ["１２３４５６７８９０１２３４５６７"]},
        {"role_ids": [guild.role("Comprador")], "duration": "custom", "duration_days": "0"},
        {"role_ids": [guild.role("Comprador")], "duration": "custom", "duration_days": "3651"},
        {"role_ids": [guild.role("Comprador")], "duration": "custom", "duration_days": "1e3"},
        {"role_ids": [guild.role("Comprador")], "duration": "45"},
    ):
        assert (await _post(seller, path, form)).status_code == 400, form
    assert await _access(variation.id) == ([], None)
    # A role below the bot's highest role, for 45 days: saved and audited.
    resp = await _post(
        seller,
        path,
        {"role_ids": [guild.role("Comprador")], "duration": "custom", "duration_days": "45"},
    )
    assert resp.status_code == 302
    assert await _access(variation.id) == ([guild.role("Comprador")], 45)
    change = await AuditLog.get(action="variation.access_updated", target_id=str(variation.id))
    assert change.before == {"role_ids": [], "duration_days": None}
    assert change.after == {"role_ids": [guild.role("Comprador")], "duration_days": 45}
    assert change.tenant_id == seller.tenant.id
    # The page shows the saved choice.
    _, page = await seller.text(f"/variations/{variation.id}/edit")
    assert f'<option value="{guild.role("Comprador")}" selected>' in page
    # The server admin takes Manage Roles from the bot: the same role is now refused.
    await dc.edit_role(guild, guild.role("Loja Ana"), permissions=VIEW_CHANNEL | SEND_MESSAGES)
    resp = await _post(seller, path, {"role_ids": [guild.role("Comprador")], "duration": "7"})
    assert resp.status_code == 400
    assert "Gerenciar Cargos" in await resp.get_data(as_text=True)
    assert await _access(variation.id) == ([guild.role("Comprador")], 45)
    # Removing every role and the duration needs no check.
    assert (await _post(seller, path, {"duration": ""})).status_code == 302
    assert await _access(variation.id) == ([], None)


async def test_roles_are_refused_when_discord_cannot_be_read_but_other_edits_pass(world):
    app, dc = world
    seller, bot, guild, variation = await _store_with_variation(app, dc)
    path = f"/variations/{variation.id}/access"
    comprador = guild.role("Comprador")
    assert (await _post(seller, path, {"role_ids": [comprador]})).status_code == 302
    await dc.add_fault_rule(bot, "error", method="GET", path="/guilds/*", count=50, status=500)
    resp = await _post(seller, path, {"role_ids": [comprador, guild.role("Topo")]})
    assert resp.status_code == 400
    assert "Não consegui ler os cargos" in await resp.get_data(as_text=True)
    # The same roles with a new duration: nothing to check, saved.
    resp = await _post(seller, path, {"role_ids": [comprador], "duration": "90"})
    assert resp.status_code == 302
    assert await _access(variation.id) == ([comprador], 90)


async def test_staff_grant_by_hand_checks_the_roles_and_makes_the_access_due(world):
    app, dc = world
    seller, _bot, guild, variation = await _store_with_variation(app, dc)
    member = await dc.create_user("membro")
    await dc.add_member(guild, member["id"])
    status, page = await seller.text("/subscribers/grant")
    assert status == 200 and "@Comprador" in page
    refused = await _post(
        seller,
        "/subscribers/grant",
        {"buyer": member["id"], "role_ids": [guild.role("Topo")], "duration": "30"},
    )
    assert refused.status_code == 400
    assert "arraste @Loja Ana" in await refused.get_data(as_text=True)
    for bad in ("12", "x" * 500, "１２３４５６７８９０１２３４５６７"):
        resp = await _post(
            seller,
            "/subscribers/grant",
            {"buyer": bad, "role_ids": [guild.role("Comprador")], "duration": "30"},
        )
        assert resp.status_code == 400
    assert not await AccessGrant.exists()
    resp = await _post(
        seller,
        "/subscribers/grant",
        {
            "buyer": member["id"],
            "role_ids": [guild.role("Comprador")],
            "duration": "custom",
            "duration_days": "10",
            "variation": str(variation.id),
        },
    )
    assert resp.status_code == 302
    grant = await AccessGrant.get(tenant_id=seller.tenant.id)
    assert grant.buyer_discord_id == member["id"] and grant.guild_id == guild.id
    assert grant.role_ids == [guild.role("Comprador")] and grant.variation_id == variation.id
    assert grant.status == AccessStatus.ACTIVE and grant.order_id is None
    assert round((grant.ends_at - grant.starts_at).total_seconds()) == 10 * 86400
    assert grant.next_due_at is not None and grant.roles_applied_at is None  # engine's turn
    entry = await AuditLog.get(action="access.granted", target_id=str(grant.id))
    assert entry.actor == f"account:{seller.account.id}" and entry.tenant_id == seller.tenant.id
    # A second active access to the same variation: extend the first instead.
    again = await _post(
        seller,
        "/subscribers/grant",
        {"buyer": member["id"], "role_ids": [guild.role("Comprador")], "variation": variation.id},
    )
    assert again.status_code == 409
    assert await AccessGrant.filter(tenant_id=seller.tenant.id).count() == 1
