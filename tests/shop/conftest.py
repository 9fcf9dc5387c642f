import pytest

from core import redis as core_redis
from sandbox.mercadopago.testing import mp_harness
from shop.payments.mercadopago import MercadoPagoGateway
from shop.payments.service import PaymentServices
from tests.shop.helpers import MP_FAST


@pytest.fixture
async def mp():
    """The Mercado Pago stand-in on a free loopback port."""
    async with mp_harness(MP_FAST) as harness:
        yield harness


@pytest.fixture
async def svc(mp, redis_url, db):
    """Payment services against the stand-in: 5 % fee, 7-day hold, fast retries."""
    gateway = MercadoPagoGateway(
        mp.url, "TEST-token", mp.notification_url, backoff_base=0.01, max_backoff=0.05
    )
    redis = core_redis.connect(redis_url)
    yield PaymentServices(gateway, redis, fee_bps=500, hold_days=7)
    await gateway.aclose()
    await redis.aclose()
