"""End to end with real worker processes: a store connected to its own Mercado Pago account
sells in Discord; the buyer gets the item, the money lands in the seller's sandbox account and
the platform's fee in the platform's, and the platform's ledger never moves."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from core.mp_connect_settings import MPConnectSettings
from ops.fleet_harness import make_store
from sandbox.mercadopago.oauth_state import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET
from shop import ledger
from shop.errors import InsufficientBalance
from shop.models import ConnectedCharge, LedgerEntry, Payment
from shop.payments.connected import connect
from shop.payments.connected_gateway import ConnectedRouter
from shop.payments.gateways import MercadoPagoApis
from shop.payments.mercadopago import MercadoPagoGateway
from shop.payments.mp_ids import ORDERS, api_of
from shop.payments.mp_oauth import MercadoPagoOAuth
from shop.payments.orders_gateway import MercadoPagoOrdersGateway
from shop.payments.service import PaymentServices
from shop.states import OrderStatus
from shop.withdrawals import request_withdrawal
from tests.storefront.helpers import (
    approve_and_sync,
    buy,
    order_id_of,
    post_panel,
    wait_ready,
    wait_status,
)

# once per Mercado Pago API (MERCADOPAGO_API for the workers): application_fee / marketplace_fee
pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("mp_api", ["payments", "orders"])]
SELLER = 2_000_555_001
REDIRECT = "http://127.0.0.1:9/money/mercadopago/callback"


async def _seller_grant(mp_base: str) -> Any:
    """The seller authorises the platform's application at the stand-in (no PKCE here)."""
    async with httpx.AsyncClient(base_url=mp_base) as http:
        answer = await http.post(
            "/authorization",
            data={
                "client_id": SANDBOX_CLIENT_ID,
                "response_type": "code",
                "redirect_uri": REDIRECT,
                "state": "s",
                "decision": "allow",
                "user_id": str(SELLER),
            },
        )
    code = httpx.URL(answer.headers["Location"]).params["code"]
    cfg = MPConnectSettings(SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, REDIRECT, mp_base)
    return await MercadoPagoOAuth(cfg, mp_base).exchange_code(code, "")


def _router(svc: Any, fleet: Any, mp_base: str, mp_api: str) -> PaymentServices:
    """The reconciler's/portal's view: the platform gateway behind the connected router."""

    def seller(token: str) -> Any:
        def build(name: str) -> Any:
            cls = MercadoPagoOrdersGateway if name == ORDERS else MercadoPagoGateway
            return cls(mp_base, token, "http://127.0.0.1:9/webhooks/mercadopago")

        return MercadoPagoApis(build, mp_api)

    router = ConnectedRouter(svc.gateway, fleet.vault, seller, fee_bps=500)
    return PaymentServices(router, svc.redis, fee_bps=500, hold_days=0)


async def _balances(mp_base: str) -> dict[str, int]:
    async with httpx.AsyncClient(base_url=mp_base) as http:
        rows = (await http.get("/_sandbox/mp/accounts")).json()
    return {user: row["balance_cents"] for user, row in rows.items()}


async def test_connected_store_sells_in_discord_and_is_paid_in_its_own_account(
    fleet, dc, mpc, svc, sandbox, mp_api
):
    mp_base = sandbox.mp_api_base
    store = await make_store(
        fleet, dc, stock={"1 mês": ["KEY-C1", "KEY-C2"]}, prices={"1 mês": 2990}
    )
    await connect(fleet.vault, store.tenant.id, await _seller_grant(mp_base), "test")
    before = await _balances(mp_base)
    fleet.start()
    await wait_ready(fleet, dc, store)

    panel = await post_panel(store)
    pix = await buy(store.buyer, panel, store.variations[0].id)
    assert "R$ 29,90" in pix.message.text()
    order_id = order_id_of(pix)
    payment = await Payment.get(order_id=order_id)
    assert api_of(payment.provider_payment_id) == mp_api
    remote = await mpc.payment(payment.provider_payment_id)
    assert remote["collector_id"] == SELLER  # the worker charged with the seller's token

    await approve_and_sync(mpc, _router(svc, fleet, mp_base, mp_api), order_id)
    dm = await store.buyer.wait_dm(lambda m: m.embeds, timeout=15)
    assert "KEY-C1" in dm.text()
    await wait_status(order_id, OrderStatus.DELIVERED)

    after = await _balances(mp_base)
    fee, mp_fee = 150, (2990 * 99 + 5000) // 10000  # 5 % of R$ 29,90 (half up); MP's 0.99 %
    assert after[str(SELLER)] - before.get(str(SELLER), 0) == 2990 - mp_fee - fee
    assert after["1234567890"] - before["1234567890"] == fee
    assert await LedgerEntry.filter(tenant_id=store.tenant.id).count() == 0
    assert (await ledger.balance(store.tenant.id)).total_cents == 0
    assert (await ConnectedCharge.get(payment_id=payment.id)).sold_at is not None
    with pytest.raises(InsufficientBalance):  # nothing of it is withdrawable from us
        await request_withdrawal(store.tenant.id, 100, "11144477735", "test")
