"""The automatic-payout columns of `vitrine withdrawals` (the admin API's `payout` of each row)."""

from __future__ import annotations

from typing import Any

PAYOUT_COLUMNS = ("payout", "mercado pago id", "e2e id", "reason")


def payout_cells(w: dict[str, Any]) -> tuple[str, str, str, str]:
    """The automatic payout of a listed withdrawal: status (with attempts), Mercado Pago's
    transfer id, the PIX end-to-end id (or a manual payout's proof) and why it failed."""
    p = w.get("payout") or {}
    status = f"{p['status']} ({p.get('attempts') or 0}x)" if p.get("status") else "-"
    reason = (w.get("reason") or p.get("last_error") or "-").replace("\n", " ")
    proof = p.get("e2e_id") or w.get("transfer_id") or "-"
    return status, p.get("provider_id") or "-", proof, reason[:60]
