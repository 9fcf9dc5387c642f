"""`vitrine resync PAYMENT` against a served admin app and the Mercado Pago stand-in: the
payment approved at Mercado Pago becomes paid here, and a second resync changes nothing."""

from __future__ import annotations

import asyncio

import pytest
from hypercorn.asyncio import serve
from hypercorn.config import Config

from ops.cli import main
from ops.process_tools import free_port
from sandbox.mercadopago.testing import mp_harness
from shop.models import Order
from shop.payments.mercadopago import MercadoPagoGateway
from shop.payments.service import PaymentServices, create_pix_payment
from tests.shop.helpers import ADMIN_TOKEN, MP_FAST, make_order, make_settings, make_store
from web.admin import create_app


@pytest.fixture
async def served_with_mp(tmp_path, db, redis_url, monkeypatch):
    async with mp_harness(MP_FAST) as mp:
        await mp.control.set_faults(drop=True)  # nobody listens for webhooks here
        port = free_port()
        settings = make_settings(tmp_path, db, redis_url, mp_url=mp.url)
        for name, value in {
            "DATABASE_URL": db,
            "REDIS_URL": redis_url,
            "ADMIN_PORT": str(port),
            "ADMIN_API_TOKEN": ADMIN_TOKEN,
            "PORTAL_PORT": "1",
            "TOKEN_ENCRYPTION_KEYS": settings.token_encryption_keys[0],
        }.items():
            monkeypatch.setenv(name, value)
        app = create_app(settings)
        config = Config()
        config.bind = [f"127.0.0.1:{port}"]
        stop = asyncio.Event()
        task = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))
        gateway = MercadoPagoGateway.from_settings(settings)
        try:
            for _ in range(100):
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                    writer.close()
                    break
                except OSError:
                    await asyncio.sleep(0.05)
            yield mp, PaymentServices.from_settings(settings, gateway, None)
        finally:
            await gateway.aclose()
            stop.set()
            await task


async def test_cli_resync_applies_what_mercado_pago_says(served_with_mp, capsys):
    mp, services = served_with_mp
    order = await make_order(await make_store())
    payment = await create_pix_payment(services, order.id, "buyer:555")
    await mp.control.approve(int(payment.provider_payment_id))
    capsys.readouterr()
    code = await asyncio.to_thread(main, ["resync", payment.provider_payment_id])
    out = capsys.readouterr().out
    assert code == 0 and f"payment {payment.id}" in out and ": changed" in out
    assert f"order {order.id} pending → paid" in out
    assert (await Order.get(id=order.id)).status == "paid"
    code = await asyncio.to_thread(main, ["resync", str(payment.id)])
    out = capsys.readouterr().out
    assert code == 0 and ": no change" in out
