"""Operators see automatic payouts where they work: the console's withdrawals page and the
admin API's listing show each payout's state, Mercado Pago's transfer id, the PIX end-to-end
id and why it failed; a payout under way offers no manual action."""

from __future__ import annotations

import re
from types import SimpleNamespace

from sandbox.mercadopago.payouts import PAYOUTS
from sandbox.mercadopago.testing import mp_harness
from shop import payouts
from shop.models import Payout, Withdrawal
from shop.withdrawals import request_withdrawal
from tests.helpers.admin import AUTH, TOKEN
from tests.payouts.conftest import CPF, funded_tenant, payouts_gateway
from tests.shop.helpers import MP_FAST

REFUSED_CPF = "11144477735"  # a valid CPF the destination bank refuses


async def _approved(pix_key: str) -> Withdrawal:
    tid = await funded_tenant(10_000)
    w = await request_withdrawal(tid, 2_500, pix_key, "account:1")
    return await payouts.approve(w.id, "admin:ops", automatic=True)


async def paid_failed_and_queued() -> SimpleNamespace:
    """Three automatic payouts through the Mercado Pago stand-in: one paid, one refused by
    the bank (the money back on the balance), one approved but not sent yet."""
    async with mp_harness(MP_FAST) as mp:
        mp.app[PAYOUTS].rejected_keys = {REFUSED_CPF}
        gateway = payouts_gateway(mp)
        try:
            paid, failed = await _approved(CPF), await _approved(REFUSED_CPF)
            await payouts.run_once(gateway)
        finally:
            await gateway.aclose()
    queued = await _approved(CPF)
    found = SimpleNamespace(
        paid=await Withdrawal.get(id=paid.id),
        failed=await Withdrawal.get(id=failed.id),
        queued=queued,
    )
    found.paid_payout = await Payout.get(withdrawal_id=paid.id)
    found.failed_payout = await Payout.get(withdrawal_id=failed.id)
    assert found.paid.status == "completed" and found.failed.status == "failed"
    return found


def row_of(html: str, withdrawal_id: int) -> str:
    """The console table row of one withdrawal."""
    match = re.search(rf"<tr>\s*<td>{withdrawal_id}</td>.*?</tr>", html, re.S)
    assert match, f"withdrawal {withdrawal_id} is not listed"
    return match.group(0)


async def _page(client, query: str = "") -> str:
    assert (await client.post("/console/login", form={"token": TOKEN})).status_code == 302
    answer = await client.get(f"/console/withdrawals{query}")
    assert answer.status_code == 200
    return await answer.get_data(as_text=True)


async def test_console_queue_shows_a_failed_payout_with_its_reason_and_no_manual_action(client):
    w = await paid_failed_and_queued()
    html = await _page(client)
    failed = row_of(html, w.failed.id)
    assert "falhou" in failed and "Mercado Pago: rejected/by_bank" in failed
    assert w.failed_payout.provider_id and w.failed_payout.provider_id in failed
    assert f"vitrine withdrawals retry|manual {w.failed.id}" in failed
    assert "/complete" not in failed and "/reject" not in failed
    queued = row_of(html, w.queued.id)
    assert "na fila" in queued and "em andamento no Mercado Pago" in queued
    assert "/complete" not in queued and "/reject" not in queued  # 409 PayoutInFlight anyway
    assert f"<td>{w.paid.id}</td>" not in html  # paid: nothing left to do


async def test_console_completed_filter_shows_the_transfer_and_its_e2e_id(client):
    w = await paid_failed_and_queued()
    html = await _page(client, "?status=completed")
    paid = row_of(html, w.paid.id)
    e2e = w.paid_payout.e2e_id
    assert e2e and e2e == w.paid.transfer_id and e2e in paid
    assert "pago (1×)" in paid and "processed/approved" in paid
    assert w.paid_payout.provider_id in paid
    assert f"<td>{w.failed.id}</td>" not in html and f"<td>{w.queued.id}</td>" not in html
    unknown = await client.get("/console/withdrawals?status=<script>")
    assert "<script>" not in await unknown.get_data(as_text=True)  # the queue instead


async def test_api_listing_carries_each_payout(client):
    w = await paid_failed_and_queued()
    answer = await client.get("/api/withdrawals", headers=AUTH)
    rows = {row["id"]: row for row in (await answer.get_json())["withdrawals"]}
    assert rows[w.paid.id]["payout"]["e2e_id"] == w.paid.transfer_id
    assert rows[w.failed.id]["payout"]["status"] == "failed"
    assert rows[w.failed.id]["reason"] == "Mercado Pago: rejected/by_bank"
    assert rows[w.queued.id]["payout"]["status"] == "queued"
    manual = await request_withdrawal(w.paid.tenant_id, 1_000, CPF, "account:1")
    answer = await client.get("/api/withdrawals?status=requested", headers=AUTH)
    (listed,) = [r for r in (await answer.get_json())["withdrawals"] if r["id"] == manual.id]
    assert listed["payout"] is None  # not approved yet: no payout
