"""`vitrine withdrawals` lists each withdrawal's automatic payout: its state, Mercado Pago's
transfer id, the PIX end-to-end id and why it failed."""

from __future__ import annotations

from tests.admin.test_payouts_console import paid_failed_and_queued
from tests.ops.test_ops_cli import cli, served  # noqa: F401 - a fixture


def line_of(out: str, withdrawal_id: int) -> str:
    rows = out.splitlines()[1:-1]  # the header and the "N withdrawal(s)" count left out
    (line,) = [x for x in rows if x.split()[:1] == [str(withdrawal_id)]]
    return line


async def test_withdrawals_listing_shows_the_payouts(served, capsys):
    w = await paid_failed_and_queued()
    code, out, _ = await cli(capsys, "withdrawals", "--status", "failed")
    failed = line_of(out, w.failed.id)
    assert code == 0 and "failed (1x)" in failed
    assert w.failed_payout.provider_id in failed and "Mercado Pago: rejected/by_bank" in failed
    code, out, _ = await cli(capsys, "withdrawals", "--status", "completed")
    paid = line_of(out, w.paid.id)
    assert code == 0 and "paid (1x)" in paid and w.paid.transfer_id in paid
    code, out, _ = await cli(capsys, "withdrawals", "--pending")
    assert code == 0 and "queued (0x)" in line_of(out, w.queued.id)
