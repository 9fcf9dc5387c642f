"""Connected-seller tests: a portal app talking to the Mercado Pago stand-in, and the seller's
trip through the stand-in's consent page (real sockets)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from sandbox.mercadopago.oauth_state import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET
from sandbox.mercadopago.testing import MPHarness, mp_harness
from tests.helpers.portal import Seller, portal_settings
from tests.shop.helpers import MP_FAST, SECRET

SELLER_MP_ID = 2_000_777_001


@asynccontextmanager
async def connected_portal(
    tmp_path: Any, database_url: str, redis_url: str, **env: str
) -> AsyncIterator[tuple[Any, MPHarness]]:
    """(the portal app, serving; the Mercado Pago stand-in) with the OAuth client set up."""
    from web.portal import create_app

    async with mp_harness(MP_FAST) as mp:
        values = {
            "MERCADOPAGO_API_BASE": mp.url,
            "MERCADOPAGO_ACCESS_TOKEN": "TEST-token",
            "MERCADOPAGO_WEBHOOK_SECRET": SECRET,
            "MERCADOPAGO_CLIENT_ID": SANDBOX_CLIENT_ID,
            "MERCADOPAGO_CLIENT_SECRET": SANDBOX_CLIENT_SECRET,
            "MERCADOPAGO_OAUTH_BASE": mp.url,
            "PLATFORM_FEE_PERCENT": "5",
            "WITHDRAWAL_HOLD_DAYS": "0",
            **env,
        }
        app = create_app(portal_settings(tmp_path, database_url, redis_url, **values))
        async with app.test_app():
            yield app, mp


async def consent(authorize_location: str, user_id: int, decision: str = "allow") -> str:
    """The seller answers Mercado Pago's consent page; returns where it sends the browser."""
    parts = urlsplit(authorize_location)
    form = {k: v[0] for k, v in parse_qs(parts.query).items()}
    form.update(decision=decision, user_id=str(user_id))
    async with httpx.AsyncClient(base_url=f"{parts.scheme}://{parts.netloc}") as http:
        answer = await http.post(parts.path, data=form)
    assert answer.status_code == 302, answer.text
    return answer.headers["Location"]


def local_path(url: str) -> str:
    """The portal path (with query) of an absolute redirect URL."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


async def connect_seller(seller: Seller, user_id: int = SELLER_MP_ID) -> None:
    """The whole portal flow: start, consent at Mercado Pago, callback."""
    start = await seller.client.get("/money/mercadopago/connect")
    assert start.status_code == 302
    back = await consent(start.headers["Location"], user_id)
    done = await seller.client.get(local_path(back))
    assert done.status_code == 302, await done.get_data(as_text=True)


async def balances(mp: MPHarness) -> dict[str, int]:
    """Every sandbox account's balance in centavos, by Mercado Pago user id."""
    answer = await mp.api.get("/_sandbox/mp/accounts")
    return {user: row["balance_cents"] for user, row in answer.json().items()}
