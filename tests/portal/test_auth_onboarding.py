"""Login with Discord and bot onboarding against the Discord sandbox (real sockets)."""

from __future__ import annotations

import time
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from quart_auth import generate_auth_token

from core.audit import AuditLog
from core.vault import TokenVault
from fleet import keys
from fleet.models import BotInstance
from sandbox.discord.client import DiscordSandbox
from sandbox.server import run_sandbox
from shop.models import Account, WebSession
from tests.helpers.portal import make_seller, portal_settings
from web.portal import create_app

REDIRECT_PATH = "/auth/callback"
BASE = "http://127.0.0.1:3100"


@pytest.fixture
async def env(db, redis_url, tmp_path):
    async with (
        run_sandbox("127.0.0.1", 0, mp_port=None) as sb,
        DiscordSandbox(sb.discord_base) as dc,
    ):
        oauth = await dc.create_oauth_app([BASE + REDIRECT_PATH])
        settings = portal_settings(
            tmp_path,
            db,
            redis_url,
            DISCORD_API_BASE=sb.discord_api_base,
            DISCORD_OAUTH_BASE=sb.oauth_base,
            DISCORD_CLIENT_ID=oauth["client_id"],
            DISCORD_CLIENT_SECRET=oauth["client_secret"],
        )
        app = create_app(settings)
        async with app.test_app():
            yield app, dc, settings


async def _login(app, dc, user_id: str, *, client=None, tamper_state=False, deny=False):
    """Drive the browser's part: portal → sandbox authorize → portal callback."""
    client = client or app.test_client()
    start = await client.get("/auth/discord")
    assert start.status_code == 302
    authorize = start.headers["Location"]
    params = parse_qs(urlsplit(authorize).query)
    assert params["redirect_uri"] == [BASE + REDIRECT_PATH] and params["state"][0]
    extra = "&decision=deny" if deny else f"&sandbox_user={user_id}"
    async with httpx.AsyncClient() as http:
        back = await http.get(authorize + extra)
    assert back.status_code == 302
    location = urlsplit(back.headers["Location"])
    assert location.path == REDIRECT_PATH
    query = location.query
    if tamper_state:
        query = query.replace("state=", "state=x")
    return client, await client.get(f"{REDIRECT_PATH}?{query}")


async def test_login_with_discord_creates_account_and_revocable_session(env):
    app, dc, _ = env
    user = await dc.create_user("vendedora")
    client, resp = await _login(app, dc, user["id"])
    assert resp.status_code == 302 and resp.headers["Location"] == "/"
    account = await Account.get(discord_id=user["id"])
    session = await WebSession.get(account=account)
    assert session.id != user["id"] and len(session.id) >= 40  # random, not the Discord id
    page = await client.get("/stores/new")
    assert page.status_code == 200
    assert await AuditLog.filter(action="portal.login", target_id=str(account.id)).exists()
    # Logout revokes server-side: replaying the old cookie no longer works.
    old = app.test_client()
    old.set_cookie("127.0.0.1", "vitrine_portal", generate_auth_token(old, session.id))
    assert (await old.get("/stores/new")).status_code == 200
    text = await (await client.get("/stores/new")).get_data(as_text=True)
    token = text.split('name="csrf_token" value="')[1].split('"')[0]
    out = await client.post("/logout", form={"csrf_token": token})
    assert out.status_code == 302
    assert (await WebSession.get(id=session.id)).revoked_at is not None
    assert (await old.get("/stores/new")).status_code == 302


async def test_state_mismatch_and_denial_do_not_log_in(env):
    app, dc, _ = env
    user = await dc.create_user("ana")
    _client, resp = await _login(app, dc, user["id"], tamper_state=True)
    assert resp.status_code == 400
    assert "expirou" in await resp.get_data(as_text=True)
    _client, resp = await _login(app, dc, user["id"], deny=True)
    assert resp.status_code == 200
    assert "cancelou" in await resp.get_data(as_text=True)
    assert not await Account.filter(discord_id=user["id"]).exists()
    # A callback with no login started at all.
    resp = await app.test_client().get(f"{REDIRECT_PATH}?code=abc&state=abc")
    assert resp.status_code == 400


async def test_blocked_account_cannot_log_in_and_sees_why(env):
    app, dc, _ = env
    user = await dc.create_user("bloqueado")
    await Account.create(
        discord_id=user["id"],
        username="bloqueado",
        blocked=True,
        blocked_reason="Venda de contas roubadas",
    )
    _client, resp = await _login(app, dc, user["id"])
    assert resp.status_code == 403
    assert "Venda de contas roubadas" in await resp.get_data(as_text=True)
    assert await WebSession.all().count() == 0


async def test_blocked_while_logged_in_is_logged_out(env):
    app, _dc, _ = env
    seller = await make_seller(app)
    await Account.filter(id=seller.account.id).update(blocked=True, blocked_reason="Fraude")
    resp = await seller.client.get("/products")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/blocked")
    assert "Fraude" in await (await seller.client.get("/blocked")).get_data(as_text=True)


async def test_login_is_rate_limited_per_ip(env):
    app, _dc, _ = env
    client = app.test_client()
    statuses = [(await client.get("/auth/discord")).status_code for _ in range(22)]
    assert statuses[:20] == [302] * 20 and statuses[-1] == 429


async def test_login_limit_holds_across_the_edge_of_a_window(env, monkeypatch):
    """19 attempts just before a 5-minute edge and 3 just after: the 21st in a few seconds is
    refused (a fixed window started counting again at 0 and let 40 through)."""
    from web.portal import security

    app, _dc, _ = env
    client = app.test_client()
    edge = (int(time.time() // 300) + 1) * 300
    clock = SimpleNamespace(time=lambda: edge - 1.0)
    monkeypatch.setattr(security, "time", clock)
    before = [(await client.get("/auth/discord")).status_code for _ in range(19)]
    clock.time = lambda: edge + 1.0
    after = [(await client.get("/auth/discord")).status_code for _ in range(3)]
    assert before == [302] * 19 and after == [302, 429, 429]


async def test_valid_bot_token_is_stored_encrypted_and_marked_dirty(env):
    app, dc, settings = env
    bot = await dc.create_bot("Loja Bot")
    seller = await make_seller(app)
    resp = await seller.post("/bot", {"token": bot.token})
    assert resp.status_code == 302
    instance = await BotInstance.get(tenant_id=seller.tenant.id)
    assert instance.application_id == bot.application_id
    assert instance.bot_username == "Loja Bot" and instance.bot_user_id == bot.user_id
    assert bot.token not in instance.token_enc
    vault = TokenVault(settings.token_encryption_keys)
    assert vault.decrypt(instance.token_enc).reveal() == bot.token
    status, page = await seller.text("/bot")
    assert status == 200 and "Loja Bot" in page and bot.token not in page
    assert f"client_id={bot.application_id}" in page and "permissions=" in page
    redis = app.config["REDIS"]
    assert str(instance.id) in await redis.smembers(keys.INSTANCES_DIRTY)
    # Replacing the token bumps the config version (the orchestrator restarts the worker).
    other = await dc.create_bot("Loja Bot 2")
    await seller.post("/bot", {"token": other.token})
    await instance.refresh_from_db()
    assert instance.config_version == 2 and instance.application_id == other.application_id


@pytest.mark.parametrize(
    "token,message",
    [
        ("definitely-not-a-token", "Token inválido"),
        ("AAAAAAAAAAAAAAAAAAAAAAAA.BBBBBB.CCCCCCCCCCCCCCCCCCCCCCCCCCC", "Token inválido"),
    ],
)
async def test_invalid_bot_token_is_rejected_on_the_spot(env, token, message):
    app, _dc, _ = env
    seller = await make_seller(app)
    resp = await seller.post("/bot", {"token": token})
    assert resp.status_code == 400
    assert message in await resp.get_data(as_text=True)
    assert not await BotInstance.filter(tenant_id=seller.tenant.id).exists()


async def test_token_validation_is_rate_limited(env):
    app, _dc, _ = env
    seller = await make_seller(app)
    statuses = [
        (await seller.post("/bot", {"token": "x" * 30 + ".a.b"})).status_code for _ in range(11)
    ]
    assert statuses[:10] == [400] * 10 and statuses[10] == 429
