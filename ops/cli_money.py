"""`vitrine withdrawals approve|complete|reject ID` (without an action it lists them) and
`vitrine resync PAYMENT`.

approve: requested → processing (the operator is about to send the PIX). complete:
processing → completed, with the PIX end-to-end id from the transfer's receipt as proof
(`--e2e-id`, checked before anything is sent). reject: the amount goes back to the seller's
balance; `--reason` is required and shown to the seller. With PAYOUT_MODE=automatic
(shop.payouts) approve is enough: the platform sends the PIX. payout: the automatic payout's
state (Mercado Pago's id, the end-to-end id, the last error). retry / manual: a `failed`
payout sent again, or left to be paid by hand, as a new withdrawal.
"""

from __future__ import annotations

import argparse
from typing import Any

from core.bootstrap import load_settings_or_exit
from core.i18n import format_brl
from ops import opscmds
from ops.cli_actions import (
    REASON_MAX,
    UsageError,
    add_action,
    need_id,
    refuse_list_options,
    text_arg,
)
from shop.pix_proof import InvalidEndToEndId, parse_e2e_id

ACTIONS = ["approve", "complete", "reject", "payout", "retry", "manual"]
_LIST_OPTIONS = ("pending", "status", "tenant")


def _line(w: dict[str, Any]) -> str:
    proof = f", e2e {w['transfer_id']}" if w.get("transfer_id") else ""
    reason = f", reason: {w['reason']}" if w.get("reason") else ""
    return (
        f"withdrawal {w['id']} (tenant {w['tenant_id']}): {w['status']} — "
        f"{format_brl(w['amount_cents'])} to {w['pix_key_type']}:{w['pix_key']}{proof}{reason}"
    )


def cmd_withdrawals(args: argparse.Namespace) -> int:
    """List (no action), or approve / complete / reject one withdrawal."""
    if args.action is None:
        if args.id is not None:
            raise UsageError(
                "an id needs an action: vitrine withdrawals approve|complete|reject|payout ID"
            )
        for flag in ("e2e_id", "reason"):
            if getattr(args, flag):
                raise UsageError(f"--{flag.replace('_', '-')} goes with complete/reject")
        return opscmds.cmd_withdrawals(args)
    refuse_list_options(args, *_LIST_OPTIONS)
    wid = need_id(args, f"vitrine withdrawals {args.action} ID")
    if args.action == "payout":
        return _show_payout(args, wid)
    body: dict[str, Any] = {}
    if args.action == "complete":
        if not args.e2e_id:
            raise UsageError(
                "complete needs the proof: vitrine withdrawals complete ID --e2e-id E... "
                "(the PIX end-to-end id on the transfer's receipt)"
            )
        try:
            body["e2e_id"] = parse_e2e_id(args.e2e_id)
        except InvalidEndToEndId as exc:
            raise UsageError(f"--e2e-id: {exc}") from None
    elif args.e2e_id:
        raise UsageError("--e2e-id goes with complete only")
    if args.action == "reject":
        if not args.reason:
            raise UsageError('reject needs a reason: vitrine withdrawals reject ID --reason "..."')
        body["reason"] = args.reason
    elif args.reason:
        raise UsageError("--reason goes with reject only (it is shown to the seller)")
    settings = load_settings_or_exit()
    with opscmds.client(settings) as api:
        answer = api.post(f"/api/withdrawals/{wid}/{args.action}", body)
    print(_line(answer) + (f" (retry of {answer['retry_of']})" if "retry_of" in answer else ""))
    return 0


def _show_payout(args: argparse.Namespace, wid: int) -> int:
    for flag in ("e2e_id", "reason"):
        if getattr(args, flag):
            raise UsageError(f"--{flag.replace('_', '-')} goes with complete/reject")
    settings = load_settings_or_exit()
    with opscmds.client(settings) as api:
        p = api.get(f"/api/withdrawals/{wid}/payout")
    if p["mode"] == "manual":
        print(f"withdrawal {wid} ({p['withdrawal_status']}): manual payout (an operator pays)")
        return 0
    print(
        f"withdrawal {wid} ({p['withdrawal_status']}): automatic payout {p['status']}, "
        f"Mercado Pago {p['provider_id'] or '-'} {p['provider_status'] or ''} "
        f"{p['provider_detail'] or ''}".rstrip()
        + f", e2e {p['e2e_id'] or '-'}, {p['attempts']} attempt(s)"
    )
    if p["last_error"]:
        print(f"  last error: {p['last_error']}")
    if p["retried_as"]:
        print(f"  retried as withdrawal {p['retried_as']}")
    return 0


def cmd_resync(args: argparse.Namespace) -> int:
    """Ask Mercado Pago about one payment now and apply the answer (paid → delivery)."""
    ref = args.payment.strip()
    if not ref or len(ref) > 64 or not all(c.isalnum() or c == "-" for c in ref):
        raise UsageError("PAYMENT is our payment id (UUID) or the Mercado Pago id (digits)")
    settings = load_settings_or_exit()
    with opscmds.client(settings) as api:
        answer = api.post(f"/api/payments/{ref}/resync")
    print(
        f"payment {answer['payment_id']} (Mercado Pago {answer['provider_payment_id']}, "
        f"order {answer['order_id']}): {answer['message']} — {answer['outcome']}"
    )
    for change in answer["changes"]:
        print(f"  {change}")
    return 0


def add_arguments(name: str, p: argparse.ArgumentParser) -> None:
    if name == "resync":
        p.add_argument("payment", help="payment id (UUID) or Mercado Pago payment id")
    if name != "withdrawals":
        return
    add_action(p, ACTIONS, "withdrawal id (see `vitrine withdrawals --pending`)")
    p.add_argument(
        "--e2e-id",
        metavar="E2E",
        help="complete: the PIX end-to-end id (32 characters, starts with E) from the receipt",
    )
    p.add_argument(
        "--reason", type=text_arg(REASON_MAX), help="reject: why (shown to the seller; required)"
    )


COMMANDS = {
    "resync": (cmd_resync, "ask Mercado Pago about a payment now and apply it (paid → delivery)"),
    "withdrawals": (
        cmd_withdrawals,
        "list withdrawals (--pending), or approve|complete|reject|payout|retry|manual ID "
        "(complete --e2e-id E2E, reject --reason R)",
    ),
}
