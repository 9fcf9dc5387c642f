"""A seller connects the store's own Mercado Pago account from the portal (OAuth with state
and PKCE against the stand-in), the reconciler renews the tokens once, and disconnecting
forgets them and puts the store back on platform-collected money."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

from core.models import AuditLog
from core.vault import TokenVault
from sandbox.mercadopago.keys import MP_OAUTH
from sandbox.mercadopago.oauth_state import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET
from shop.models import MoneyMode, MoneyModeChange, MPConnection
from shop.payments.connected_gateway import refresh_connected_tokens
from tests.helpers.portal import make_seller
from tests.payments.connected_helpers import (
    SELLER_MP_ID,
    connect_seller,
    connected_portal,
    consent,
    local_path,
)
from web.common import payment_services


def _sqlite_bytes(path: Path) -> bytes:
    """The database file and its write-ahead log (recent writes may be only there)."""
    wal = path.with_name(path.name + "-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def _vault(app) -> TokenVault:
    return TokenVault(app.config["VITRINE_SETTINGS"].token_encryption_keys)


async def test_connect_stores_encrypted_tokens_and_switches_the_store(
    db, redis_url, tmp_path, caplog
):
    caplog.set_level(logging.DEBUG)
    async with connected_portal(tmp_path, db, redis_url) as (app, mp):
        seller = await make_seller(app)
        start = await seller.client.get("/money/mercadopago/connect")
        assert start.status_code == 302
        where = urlsplit(start.headers["Location"])
        query = parse_qs(where.query)
        assert where.path == "/authorization"
        assert query["client_id"] == [SANDBOX_CLIENT_ID]
        assert query["response_type"] == ["code"] and query["platform_id"] == ["mp"]
        assert query["redirect_uri"] == ["http://127.0.0.1:3100/money/mercadopago/callback"]
        assert query["code_challenge_method"] == ["S256"] and query["state"][0]

        back = await consent(start.headers["Location"], SELLER_MP_ID)
        done = await seller.client.get(local_path(back))
        assert done.status_code == 302

        row = await MPConnection.get(tenant_id=seller.tenant.id)
        assert row.mp_user_id == str(SELLER_MP_ID)
        assert row.money_mode == MoneyMode.CONNECTED
        issued = [t for t, i in mp.app[MP_OAUTH].access.items() if i.user_id == SELLER_MP_ID]
        assert len(issued) == 1
        token = issued[0]
        refresh = next(t for t, i in mp.app[MP_OAUTH].refresh.items() if i.user_id == SELLER_MP_ID)
        assert _vault(app).decrypt(row.access_token_enc).reveal() == token
        assert token not in row.access_token_enc and refresh not in row.refresh_token_enc
        audit_text = " ".join(str(a.after) for a in await AuditLog.all())
        assert token not in audit_text and refresh not in audit_text
        assert token not in caplog.text and refresh not in caplog.text
        if db.startswith("sqlite://"):  # nowhere in the database file either
            raw = await asyncio.to_thread(_sqlite_bytes, Path(db.removeprefix("sqlite://")))
            assert str(SELLER_MP_ID).encode() in raw  # the scan sees what is stored in clear
            assert token.encode() not in raw and refresh.encode() not in raw
        changes = await MoneyModeChange.filter(tenant_id=seller.tenant.id)
        assert [(c.from_mode, c.to_mode) for c in changes] == [("platform", "connected")]
        _, html = await seller.text("/money/mercadopago")
        assert str(SELLER_MP_ID) in html and 'id="mp-disconnect"' in html


async def test_forged_or_replayed_state_is_refused(db, redis_url, tmp_path):
    async with connected_portal(tmp_path, db, redis_url) as (app, mp):
        seller = await make_seller(app)
        start = await seller.client.get("/money/mercadopago/connect")
        back = await consent(start.headers["Location"], SELLER_MP_ID)
        code = parse_qs(urlsplit(back).query)["code"][0]

        forged = await seller.client.get(f"/money/mercadopago/callback?code={code}&state=forged")
        assert forged.status_code == 400
        assert await MPConnection.filter(tenant_id=seller.tenant.id).count() == 0
        # the state was single use: the genuine answer after a forged one is refused too
        late = await seller.client.get(local_path(back))
        assert late.status_code == 400

        await connect_seller(seller)  # a fresh attempt works
        first = await MPConnection.get(tenant_id=seller.tenant.id)
        replay = await seller.client.get(local_path(back))
        assert replay.status_code == 400
        assert (await MPConnection.get(tenant_id=seller.tenant.id)).access_token_enc == (
            first.access_token_enc
        )

        other = await make_seller(app, "Outra")  # another browser cannot finish our flow
        start = await seller.client.get("/money/mercadopago/connect")
        back = await consent(start.headers["Location"], 2_000_999_001)
        stolen = await other.client.get(local_path(back))
        assert stolen.status_code == 400
        assert await MPConnection.filter(tenant_id=other.tenant.id).count() == 0


async def test_refresh_renews_once_across_nodes_and_disconnect_forgets(db, redis_url, tmp_path):
    async with connected_portal(tmp_path, db, redis_url) as (app, mp):
        seller = await make_seller(app)
        await connect_seller(seller)
        before = await MPConnection.get(tenant_id=seller.tenant.id)
        old_refresh = _vault(app).decrypt(before.refresh_token_enc).reveal()
        gateway = payment_services(app).gateway
        assert await refresh_connected_tokens(gateway) == 0  # 180 days left: not due

        soon = datetime.now(UTC) + timedelta(days=2)
        await MPConnection.filter(id=before.id).update(expires_at=soon)
        renewed = await asyncio.gather(*(refresh_connected_tokens(gateway) for _ in range(4)))
        assert sum(renewed) == 1  # one node wins; a second refresh would spend a dead token
        after = await MPConnection.get(id=before.id)
        assert after.access_token_enc != before.access_token_enc
        assert after.expires_at > datetime.now(UTC) + timedelta(days=170)
        assert after.refreshed_at is not None and after.refresh_error == ""
        async with httpx.AsyncClient(base_url=mp.url) as http:  # the old one was spent
            reused = await http.post(
                "/oauth/token",
                json={
                    "client_id": SANDBOX_CLIENT_ID,
                    "client_secret": SANDBOX_CLIENT_SECRET,
                    "grant_type": "refresh_token",
                    "refresh_token": old_refresh,
                },
            )
        assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"

        resp = await seller.post("/money/mercadopago/disconnect")
        assert resp.status_code == 302
        gone = await MPConnection.get(id=before.id)
        assert gone.access_token_enc == "" and gone.refresh_token_enc == ""
        assert gone.disconnected_at is not None and gone.money_mode == MoneyMode.PLATFORM
        modes = await MoneyModeChange.filter(tenant_id=seller.tenant.id).order_by("id")
        assert [(c.from_mode, c.to_mode, c.actor) for c in modes] == [
            ("platform", "connected", f"account:{seller.account.id}"),
            ("connected", "platform", f"account:{seller.account.id}"),
        ]
        assert await refresh_connected_tokens(gateway) == 0  # nothing left to renew


async def test_disconnect_needs_the_csrf_token(db, redis_url, tmp_path):
    async with connected_portal(tmp_path, db, redis_url) as (app, mp):
        seller = await make_seller(app)
        await connect_seller(seller)
        resp = await seller.client.post("/money/mercadopago/disconnect", form={})
        assert resp.status_code == 403
        row = await MPConnection.get(tenant_id=seller.tenant.id)
        assert row.disconnected_at is None and row.money_mode == MoneyMode.CONNECTED


async def test_a_refused_refresh_is_kept_and_the_store_keeps_its_mode(db, redis_url, tmp_path):
    async with connected_portal(tmp_path, db, redis_url) as (app, mp):
        seller = await make_seller(app)
        await connect_seller(seller)
        row = await MPConnection.get(tenant_id=seller.tenant.id)
        await MPConnection.filter(id=row.id).update(
            expires_at=datetime.now(UTC) + timedelta(days=1)
        )
        revoked = await mp.api.post("/_sandbox/mp/oauth/revoke", json={"user_id": SELLER_MP_ID})
        assert revoked.json()["revoked"] == 2  # the seller revoked us in their account

        assert await refresh_connected_tokens(payment_services(app).gateway) == 0
        after = await MPConnection.get(id=row.id)
        assert "invalid_grant" in after.refresh_error
        assert after.access_token_enc == row.access_token_enc
        _, html = await seller.text("/money/mercadopago")
        assert 'id="mp-refresh-error"' in html
