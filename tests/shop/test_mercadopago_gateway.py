"""MercadoPagoGateway against the Mercado Pago stand-in over real sockets."""

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from shop.cents import cents_to_reais, fee_cents, reais_to_cents
from shop.errors import PaymentNotFound, PaymentProviderError, PaymentProviderUnavailable
from shop.payments.gateway import PixCharge
from shop.payments.mercadopago import MercadoPagoGateway, format_mp_date


@pytest.fixture
async def gateway(mp):
    gw = MercadoPagoGateway(
        mp.url,
        "TEST-token",
        "http://127.0.0.1:9/webhooks/mercadopago",
        backoff_base=0.01,
        max_backoff=1.5,
    )
    yield gw
    await gw.aclose()


def charge(amount_cents=1010, **kw):
    base = {
        "payment_id": str(uuid.uuid4()),
        "amount_cents": amount_cents,
        "description": "Pedido #1",
        "payer_email": "buyer555@example.com",
        "expires_at": datetime.now(UTC) + timedelta(minutes=31),
    }  # MP's minimum + margin
    return PixCharge(**{**base, **kw})


def test_money_conversions_are_exact():
    assert cents_to_reais(1010) == Decimal("10.10")
    assert reais_to_cents(10.1) == 1010 and reais_to_cents(0.29) == 29
    assert reais_to_cents("1234.56") == 123456
    with pytest.raises(ValueError):
        reais_to_cents(0.001)
    assert fee_cents(1990, 500) == 100  # 99.5 rounds half up
    assert fee_cents(1000, 550) == 55


def test_expiration_uses_mercadopago_format():
    moment = datetime(2026, 5, 31, 2, 59, 59, tzinfo=UTC)
    assert format_mp_date(moment) == "2026-05-30T23:59:59.000-03:00"


async def test_create_pix_sends_reais_reference_and_idempotency_key(mp, gateway):
    c = charge(amount_cents=1010, metadata={"order_id": 7})
    created = await gateway.create_pix(c)
    assert created.status == "pending" and created.amount_cents == 1010
    assert created.external_reference == c.payment_id and created.qr_code.startswith("000201")
    assert created.ticket_url and created.expires_at is not None
    raw = await mp.control.payment(int(created.id))
    assert raw["transaction_amount"] == 10.1
    assert raw["notification_url"] == "http://127.0.0.1:9/webhooks/mercadopago"
    again = await gateway.create_pix(c)  # a retried create: the same charge, not a second one
    assert again.id == created.id
    assert len(await mp.control.payments()) == 1


async def test_get_search_and_refund(mp, gateway):
    c = charge()
    created = await gateway.create_pix(c)
    await mp.control.approve(int(created.id))
    got = await gateway.get_payment(created.id)
    assert got.status == "approved" and got.approved_at is not None
    found = await gateway.find_by_reference(c.payment_id)
    assert [p.id for p in found] == [created.id]
    assert await gateway.find_by_reference(str(uuid.uuid4())) == []
    await gateway.refund(created.id, idempotency_key=f"r-{c.payment_id}")
    await gateway.refund(created.id, idempotency_key=f"r-{c.payment_id}")  # replay: one refund
    after = await gateway.get_payment(created.id)
    assert after.status == "refunded" and after.refunded_cents == 1010


async def test_unknown_payment_is_payment_not_found(gateway):
    with pytest.raises(PaymentNotFound, match="Payment not found"):
        await gateway.get_payment("999")


async def test_retries_429_honouring_retry_after_then_succeeds(mp, gateway):
    await mp.control.set_faults(api_error_status=429, api_error_count=2, retry_after=1)
    import time

    started = time.monotonic()
    created = await gateway.create_pix(charge())
    assert created.status == "pending"
    assert time.monotonic() - started >= 1.9  # waited Retry-After twice
    assert (await mp.control.requests())["POST /v1/payments"] == 3
    assert len(await mp.control.payments()) == 1


async def test_persistent_5xx_becomes_provider_unavailable(mp, gateway):
    await mp.control.set_faults(api_error_status=503, api_error_count=10)
    with pytest.raises(PaymentProviderUnavailable) as info:
        await gateway.get_payment("1")
    assert info.value.status == 503
    assert sum((await mp.control.requests()).values()) == gateway.max_attempts


async def test_rejected_request_keeps_mercadopago_message(gateway):
    with pytest.raises(PaymentProviderError) as info:
        await gateway.create_pix(charge(payer_email="not-an-email"))
    assert info.value.status == 400 and "payer.email" in info.value.provider_message
    assert not isinstance(info.value, PaymentProviderUnavailable)
