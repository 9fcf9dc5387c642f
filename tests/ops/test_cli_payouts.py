"""`vitrine withdrawals payout|retry|manual ID` against a real admin app (PAYOUT_MODE unset:
manual) and a payout the Mercado Pago stand-in refused."""

from __future__ import annotations

from sandbox.mercadopago.payouts import PAYOUTS
from sandbox.mercadopago.testing import mp_harness
from shop import payouts
from shop.models import Payout, Withdrawal
from shop.withdrawals import request_withdrawal
from tests.ops.test_ops_cli import cli, served  # noqa: F401 - a fixture
from tests.payouts.conftest import CPF, funded_tenant, payouts_gateway
from tests.shop.helpers import MP_FAST


async def _failed_payout() -> Withdrawal:
    async with mp_harness(MP_FAST) as mp:
        mp.app[PAYOUTS].rejected_keys = {CPF}
        gateway = payouts_gateway(mp)
        try:
            tid = await funded_tenant(10_000)
            w = await request_withdrawal(tid, 2_500, CPF, "account:1")
            await payouts.approve(w.id, "admin:ops", automatic=True)
            await payouts.run_once(gateway)
        finally:
            await gateway.aclose()
    return await Withdrawal.get(id=w.id)


async def test_cli_shows_a_failed_payout_and_leaves_it_to_be_paid_by_hand(served, capsys):
    w = await _failed_payout()
    code, out, _ = await cli(capsys, "withdrawals", "payout", str(w.id))
    assert code == 0 and f"withdrawal {w.id} (failed): automatic payout failed" in out
    assert "rejected by_bank" in out and "1 attempt(s)" in out

    code, _, err = await cli(capsys, "withdrawals", "retry", str(w.id))
    assert code == 1 and "PAYOUT_MODE=manual" in err  # this admin pays by hand
    code, out, _ = await cli(capsys, "withdrawals", "manual", str(w.id))
    (new,) = await Withdrawal.filter(id__gt=w.id)
    assert code == 0 and f"withdrawal {new.id}" in out and f"(retry of {w.id})" in out
    assert new.status == "processing" and not await Payout.exists(withdrawal_id=new.id)

    code, out, _ = await cli(capsys, "withdrawals", "payout", str(new.id))
    assert code == 0 and "manual payout (an operator pays)" in out
    code, out, _ = await cli(capsys, "withdrawals", "payout", str(w.id))
    assert f"retried as withdrawal {new.id}" in out
    code, _, err = await cli(capsys, "withdrawals", "payout", str(w.id), "--reason", "x")
    assert code == 2 and "--reason" in err
