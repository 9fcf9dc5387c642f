import pytest

from sandbox.mercadopago.testing import mp_harness
from tests.shop.helpers import MP_FAST


@pytest.fixture
async def mp():
    """The Mercado Pago stand-in on a free loopback port."""
    async with mp_harness(MP_FAST) as harness:
        yield harness
