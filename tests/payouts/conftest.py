import uuid

import pytest

from sandbox.mercadopago.payouts import PAYOUTS, PayoutsState
from sandbox.mercadopago.testing import mp_harness
from shop import ledger
from shop.payments.mercadopago_payouts import MercadoPagoPayouts
from tests.shop.helpers import MP_FAST, make_order, make_store

CPF = "52998224725"


@pytest.fixture
async def mp():
    """The Mercado Pago stand-in (with its money-out API) on a free loopback port."""
    async with mp_harness(MP_FAST) as harness:
        yield harness


@pytest.fixture
def bank(mp) -> PayoutsState:
    """The stand-in's money out: the platform's balance and every transfer."""
    return mp.app[PAYOUTS]


def payouts_gateway(mp, attempts: int = 4) -> MercadoPagoPayouts:
    return MercadoPagoPayouts(
        mp.url, "TEST-token", "", max_attempts=attempts, backoff_base=0.01, max_backoff=0.05
    )


@pytest.fixture
async def gateway(mp):
    gw = payouts_gateway(mp)
    yield gw
    await gw.aclose()


async def funded_tenant(amount: int = 10_000) -> int:
    """A store whose seller has `amount` centavos withdrawable now."""
    store = await make_store(stock=0)
    order = await make_order(store, reserve=False)
    await ledger.book_sale(str(uuid.uuid4()), store["tenant"].id, order.id, amount, 0, 0)
    return int(store["tenant"].id)
