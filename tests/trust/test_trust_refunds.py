"""Issue 13 — a refund cannot make the platform pay what the seller already withdrew.

The attack: a seller buys R$ 1.000 from their own store, waits out the hold, withdraws
R$ 950, then refunds the order in the portal; Mercado Pago returns R$ 1.000 from the
platform's account (every seller's money) and the seller's ledger ends at −R$ 950.
A seller refund is allowed only while the seller's balance covers what it takes from them;
operators can still refund (audited), and a negative balance blocks withdrawals and alerts.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from hypercorn.asyncio import serve
from hypercorn.config import Config

from core.models import AuditLog
from fleet.models import Alert, AlertKind
from ops.process_tools import free_port
from shop import ledger
from shop.errors import InsufficientBalance, NegativeBalance
from shop.models import LedgerEntry, Order, Payment
from shop.payments.service import create_pix_payment
from shop.payments.sync import sync_payment
from shop.states import OrderStatus
from shop.withdrawals import request_withdrawal
from tests.helpers.admin import AUTH, TOKEN, admin_settings
from tests.helpers.portal import make_seller, portal_settings
from tests.shop.conftest import mp, svc  # noqa: F401 - fixtures
from tests.shop.helpers import MP_FAST, make_order, make_store
from web.common import payment_services

PRICE = 100_000  # R$ 1.000,00; at the default 5 % fee the seller is credited R$ 950,00
PIX = "seller@example.com"
MP_ENV = {"MERCADOPAGO_ACCESS_TOKEN": "TEST-token"}


def refund_calls(harness) -> int:
    """Refund requests that reached the Mercado Pago sandbox (any payment)."""
    return sum(
        n
        for route, n in harness.state.request_counts.items()
        if route.startswith("POST") and route.endswith("/refunds")
    )


async def elapse_hold(tenant_id: int) -> None:
    """The hold is over: every credit of the seller is available now."""
    await LedgerEntry.filter(account=ledger.seller_account(tenant_id)).update(
        available_at=datetime.now(UTC) - timedelta(seconds=1)
    )


async def sold(svc_, harness, tenant, price: int = PRICE) -> tuple[Order, Payment]:
    """An order of `tenant`'s store paid by PIX at the sandbox and synced."""
    store = await make_store(price_cents=price, tenant=tenant)
    order = await make_order(store)
    payment = await create_pix_payment(svc_, order.id, "buyer:555")
    await harness.control.approve(int(payment.provider_payment_id))
    await sync_payment(svc_, str(payment.id), "system:test")
    return order, payment


async def snapshot(tenant_id: int) -> tuple[int, int, int]:
    bal = await ledger.balance(tenant_id)
    return bal.total_cents, bal.available_cents, await LedgerEntry.all().count()


async def flash_of(seller, order_id: int) -> str:
    _, html = await seller.text(f"/orders/{order_id}")
    return html


async def test_seller_cannot_refund_in_the_portal_what_was_already_withdrawn(
    db, redis_url, tmp_path
):
    from sandbox.mercadopago.testing import mp_harness
    from web.portal import create_app

    async with mp_harness(MP_FAST) as harness:
        app = create_app(
            portal_settings(tmp_path, db, redis_url, **MP_ENV, MERCADOPAGO_API_BASE=harness.url)
        )
        async with app.test_app():
            seller = await make_seller(app)
            tid = seller.tenant.id
            order, payment = await sold(payment_services(app), harness, seller.tenant)
            await elapse_hold(tid)
            resp = await seller.post("/money/withdrawals", {"amount": "950,00", "pix_key": PIX})
            assert resp.status_code == 302
            before = await snapshot(tid)
            assert before[:2] == (0, 0)

            resp = await seller.post(f"/orders/{order.id}/refund")

            assert resp.status_code == 302
            html = await flash_of(seller, order.id)
            assert "R$ 950,00" in html and "faltam" in html, html
            assert refund_calls(harness) == 0  # nothing reached Mercado Pago
            remote = await harness.control.payment(int(payment.provider_payment_id))
            assert remote["status"] == "approved" and remote["transaction_amount_refunded"] == 0
            assert await snapshot(tid) == before
            assert (await Order.get(id=order.id)).status == OrderStatus.PAID


async def test_a_partial_refund_the_balance_covers_is_still_allowed(db, redis_url, tmp_path):
    from sandbox.mercadopago.testing import mp_harness
    from web.portal import create_app

    async with mp_harness(MP_FAST) as harness:
        app = create_app(
            portal_settings(tmp_path, db, redis_url, **MP_ENV, MERCADOPAGO_API_BASE=harness.url)
        )
        async with app.test_app():
            seller = await make_seller(app, locale="en")
            tid = seller.tenant.id
            order, payment = await sold(payment_services(app), harness, seller.tenant)
            await elapse_hold(tid)
            await request_withdrawal(tid, 90_000, PIX, "account:test")  # R$ 50,00 left

            # R$ 10,00 back to the buyer takes R$ 9,50 from the seller (fee share R$ 0,50)
            resp = await seller.post(f"/orders/{order.id}/refund", {"amount": "10,00"})
            assert resp.status_code == 302
            assert "Refund done" in await flash_of(seller, order.id)
            remote = await harness.control.payment(int(payment.provider_payment_id))
            assert remote["status"] == "approved" and remote["transaction_amount_refunded"] == 10
            assert (await ledger.balance(tid)).total_cents == 5_000 - 950
            assert await ledger.account_total("platform:refund_holds") == 0  # hold released

            # the rest (R$ 990,00, taking R$ 940,50) is more than the R$ 40,50 left: refused
            resp = await seller.post(f"/orders/{order.id}/refund")
            html = await flash_of(seller, order.id)
            assert "R$ 900,00" in html and "missing" in html, html
            assert refund_calls(harness) == 1
            assert (await ledger.balance(tid)).total_cents == 4_050


async def test_concurrent_seller_refunds_cannot_both_pass(svc, mp):  # noqa: F811
    from shop.payments.refunds import refund_order

    svc0 = dataclasses.replace(svc, hold_days=0)
    first, _ = await sold(svc0, mp, None)
    tenant = await first.tenant
    second, _ = await sold(svc0, mp, tenant)
    await request_withdrawal(tenant.id, 95_000, PIX, "account:test")  # R$ 950,00 left
    results = await asyncio.gather(
        refund_order(svc0, first.id, "account:a"),
        refund_order(svc0, second.id, "account:b"),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, InsufficientBalance)]
    assert len(refused) == 1, results
    assert refund_calls(mp) == 1
    assert (await ledger.balance(tenant.id)).total_cents == 0
    statuses = sorted(
        [(await Order.get(id=first.id)).status, (await Order.get(id=second.id)).status]
    )
    assert statuses == [OrderStatus.PAID, OrderStatus.REFUNDED]


@pytest.fixture
async def admin_with_mp(tmp_path, db, redis_url, mp, monkeypatch):  # noqa: F811
    """The admin API served on a free port with Mercado Pago at the sandbox; the CLI's
    environment points at it."""
    from web.admin import create_app

    port = free_port()
    settings = admin_settings(
        tmp_path, db, redis_url, ADMIN_PORT=str(port), **MP_ENV, MERCADOPAGO_API_BASE=mp.url
    )
    app = create_app(settings)
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    stop = asyncio.Event()
    task = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))
    for name, value in {
        "DATABASE_URL": db,
        "REDIS_URL": redis_url,
        "ADMIN_PORT": str(port),
        "ADMIN_API_TOKEN": TOKEN,
        "PORTAL_PORT": "1",
        "TOKEN_ENCRYPTION_KEYS": settings.token_encryption_keys[0],
    }.items():
        monkeypatch.setenv(name, value)
    for _ in range(100):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            break
        except OSError:
            await asyncio.sleep(0.05)
    yield app
    stop.set()
    await task


async def withdrawn_sale(app, harness) -> tuple[int, Order, Payment]:
    """The attack's set-up: R$ 1.000 sold, the hold over, R$ 950 withdrawn (balance 0)."""
    order, payment = await sold(payment_services(app), harness, None)
    await elapse_hold(order.tenant_id)
    await request_withdrawal(order.tenant_id, 95_000, PIX, "account:test")
    return order.tenant_id, order, payment


async def test_operator_refund_through_the_admin_api_is_audited_and_goes_negative(
    admin_with_mp, mp
):  # noqa: F811
    tid, order, payment = await withdrawn_sale(admin_with_mp, mp)
    client = admin_with_mp.test_client()

    missing = await client.post(f"/api/orders/{order.id}/refund", headers=AUTH, json={})
    assert missing.status_code == 400  # the reason is required
    assert refund_calls(mp) == 0

    resp = await client.post(
        f"/api/orders/{order.id}/refund", headers=AUTH, json={"reason": "comprador provou fraude"}
    )
    body = await resp.get_json()
    assert resp.status_code == 200, body
    assert body["order_status"] == "refunded" and body["balance_cents"] == -95_000
    remote = await mp.control.payment(int(payment.provider_payment_id))
    assert remote["status"] == "refunded"
    assert (await ledger.balance(tid)).total_cents == -95_000
    audit = await AuditLog.get(action="payment.refund_requested", tenant_id=tid)
    assert audit.actor.startswith("admin:token:")
    assert audit.after["reason"] == "comprador provou fraude"
    assert audit.after["balance_check"] == "skipped (operator)"
    assert await Alert.filter(kind=AlertKind.NEGATIVE_BALANCE, tenant_id=tid).count() == 1


async def test_cli_refund_calls_the_admin_api_with_reason_and_amount(
    admin_with_mp,
    mp,  # noqa: F811
    capsys,
):
    from ops.cli import main

    tid, order, payment = await withdrawn_sale(admin_with_mp, mp)
    capsys.readouterr()
    code = await asyncio.to_thread(
        main, ["refund", str(order.id), "--reason", "pedido duplicado", "--amount", "12,50"]
    )
    out = capsys.readouterr()
    assert code == 0, out.err
    assert f"order {order.id}" in out.out and "R$ 12,50" in out.out
    remote = await mp.control.payment(int(payment.provider_payment_id))
    assert remote["transaction_amount_refunded"] == 12.5
    # R$ 12,50 less its fee share (R$ 0,63) came from a seller with nothing left
    assert (await ledger.balance(tid)).total_cents == -1_187
    audit = await AuditLog.get(action="payment.refund_requested", tenant_id=tid)
    assert audit.after["reason"] == "pedido duplicado" and audit.after["amount_cents"] == 1_250

    code = await asyncio.to_thread(main, ["refund", str(order.id), "--reason", " "])
    assert code == 1 and "reason" in capsys.readouterr().err
    code = await asyncio.to_thread(
        main, ["refund", str(order.id), "--reason", "x", "--amount", "doze"]
    )
    assert code == 1 and "amount" in capsys.readouterr().err
    assert refund_calls(mp) == 1


async def test_chargeback_after_payout_blocks_withdrawals_and_alerts_once(db, redis_url, tmp_path):
    from sandbox.mercadopago.testing import mp_harness
    from web.portal import create_app

    async with mp_harness(MP_FAST) as harness:
        app = create_app(
            portal_settings(tmp_path, db, redis_url, **MP_ENV, MERCADOPAGO_API_BASE=harness.url)
        )
        async with app.test_app():
            seller = await make_seller(app)
            tid = seller.tenant.id
            svc_ = payment_services(app)
            order, payment = await sold(svc_, harness, seller.tenant)
            await elapse_hold(tid)
            await request_withdrawal(tid, 95_000, PIX, "account:test")
            second, _ = await sold(svc_, harness, seller.tenant, price=10_000)
            await elapse_hold(tid)  # R$ 95,00 available again

            await harness.control.chargeback(int(payment.provider_payment_id))
            await sync_payment(svc_, str(payment.id), "system:test")
            await sync_payment(svc_, str(payment.id), "system:test")  # replayed: no new alert

            assert (await ledger.balance(tid)).total_cents == 9_500 - 95_000
            alerts = await Alert.filter(kind=AlertKind.NEGATIVE_BALANCE, tenant_id=tid)
            assert len(alerts) == 1 and "-R$ 855,00" in alerts[0].message
            with pytest.raises(NegativeBalance):
                await request_withdrawal(tid, 1_000, PIX, "account:test")
            resp = await seller.post("/money/withdrawals", {"amount": "10,00", "pix_key": PIX})
            html = await resp.get_data(as_text=True)
            assert resp.status_code == 400 and "saques ficam bloqueados" in html
            _, page = await seller.text("/money")
            assert 'id="negative-balance"' in page and "-R$ 855,00" in page
            assert 'id="withdraw-submit" disabled' in page


async def test_a_refund_mercado_pago_refuses_gives_the_reserved_money_back(svc, mp):  # noqa: F811
    from shop.errors import PaymentProviderError
    from shop.payments.refunds import refund_order

    order, payment = await sold(svc, mp, None)
    tid = order.tenant_id
    before = (await ledger.balance(tid)).total_cents
    await mp.control.set_faults(api_error_status=503, api_error_count=20)  # MP is down
    with pytest.raises(PaymentProviderError):
        await refund_order(svc, order.id, "account:1")
    assert (await ledger.balance(tid)).total_cents == before == 95_000
    assert await ledger.account_total(ledger.HOLDS) == 0

    await mp.control.clear_faults()
    await refund_order(svc, order.id, "account:1")  # accepted this time
    assert (await Order.get(id=order.id)).status == OrderStatus.REFUNDED
    assert (await ledger.balance(tid)).total_cents == 0
    assert await ledger.account_total(ledger.HOLDS) == 0


async def test_a_hold_left_by_a_dead_process_is_settled_by_the_reconciler(svc, mp):  # noqa: F811
    """The process dies after holding the debit: once the hold is stale the reconciler asks
    Mercado Pago first (a refund that got there is booked once), then frees the rest."""
    from shop.payments import refunds
    from shop.payments.payment_reconciler import reconcile_once

    class Died(BaseException):  # not a ShopError: nothing in refund_order cleans up
        pass

    async def crash(*_a, **_kw):
        raise Died

    for reached_mp in (False, True):
        order, payment = await sold(svc, mp, None)
        tid = order.tenant_id
        gateway = svc.gateway
        if reached_mp:  # the request reached Mercado Pago, the answer never came back
            real = gateway.refund

            async def refund_then_die(*a, **kw):
                await real(*a, **kw)
                raise Died

            dead = dataclasses.replace(svc, gateway=_Gw(gateway, refund_then_die))
        else:
            dead = dataclasses.replace(svc, gateway=_Gw(gateway, crash))
        with pytest.raises(Died):
            await refunds.refund_order(dead, order.id, "account:1")
        assert (await ledger.balance(tid)).total_cents == 0  # the debit is held
        assert await ledger.account_total(ledger.HOLDS) == 95_000

        await reconcile_once(svc)  # too early: the request may still be in flight
        assert await ledger.account_total(ledger.HOLDS) == 95_000
        report = await reconcile_once(
            svc, now=datetime.now(UTC) + refunds.STALE_HOLD + timedelta(seconds=1)
        )
        assert report.refund_holds_released == 1
        assert await ledger.account_total(ledger.HOLDS) == 0
        expected = 0 if reached_mp else 95_000
        assert (await ledger.balance(tid)).total_cents == expected
        assert (await Order.get(id=order.id)).status == (
            OrderStatus.REFUNDED if reached_mp else OrderStatus.PAID
        )


class _Gw:
    """The real gateway with `refund` replaced."""

    def __init__(self, real, refund) -> None:
        self._real, self.refund = real, refund

    def __getattr__(self, name):
        return getattr(self._real, name)


@pytest.mark.parametrize(
    ("balance", "debit", "allowed", "shortfall"),
    [
        (0, 95_000, False, 95_000),  # the attack: everything withdrawn
        (95_000, 95_000, True, 0),  # exactly covered
        (5_000, 950, True, 0),  # a partial refund that fits
        (-10_000, 950, False, 10_950),  # already negative: the debt counts too
        (-10_000, 0, True, 0),  # a refund that takes nothing from the seller
    ],
)
def test_seller_refund_decision_is_a_pure_function_of_balance_and_debit(
    balance, debit, allowed, shortfall
):
    from shop.payments.refund_policy import decide_seller_refund

    decision = decide_seller_refund(balance, debit)
    assert (decision.allowed, decision.shortfall_cents) == (allowed, shortfall)
