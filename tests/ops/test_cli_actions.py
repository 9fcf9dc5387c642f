"""`vitrine withdrawals approve|complete|reject`, `accounts block|unblock`, `alerts [ack]`,
`audit`, `requests [resolve|answer]` and `queue` against a real admin app served by hypercorn
(the `served` fixture of test_ops_cli); each checks what the operator sees and what changed."""

from __future__ import annotations

import uuid

import pytest

from core.models import AuditLog
from fleet.models import Alert, AlertKind
from shop import ledger
from shop.appeals import open_appeal
from shop.models import Account, AdminRequest, Withdrawal
from shop.withdrawals import request_withdrawal
from tests.helpers.admin import TOKEN, make_account, make_order, make_tenant, make_variation
from tests.ops.test_ops_cli import cli, served  # noqa: F401 - a fixture
from web.admin.auth import token_label

ACTOR = f"admin:{token_label(TOKEN)}"
E2E = "E18236120202611301455s0123456789"  # E + ISPB + 2026-11-30 14:55 + 11 characters


async def _withdrawals(amounts: list[int]) -> tuple[int, list[Withdrawal]]:
    tenant = await make_tenant()
    variation = await make_variation(tenant, price=sum(amounts))
    order = await make_order(variation, status="delivered")
    await ledger.book_sale(str(uuid.uuid4()), tenant.id, order.id, sum(amounts), 0, 0)
    made = [
        await request_withdrawal(tenant.id, a, "vendedor@example.com", "account:1") for a in amounts
    ]
    return tenant.id, made


async def test_cli_withdrawal_approve_complete_with_e2e_and_reject_with_reason(served, capsys):
    tenant_id, (w1, w2) = await _withdrawals([3_000, 2_000])
    code, out, _ = await cli(capsys, "withdrawals", "approve", str(w1.id))
    assert code == 0 and f"withdrawal {w1.id} (tenant {tenant_id}): processing" in out
    assert "R$ 30,00" in out

    code, _, err = await cli(capsys, "withdrawals", "complete", str(w1.id))
    assert code == 2 and "--e2e-id" in err and err.count("\n") == 1
    code, _, err = await cli(capsys, "withdrawals", "complete", str(w1.id), "--e2e-id", "E123")
    assert code == 2 and "not a PIX end-to-end id" in err
    bad_date = "E18236120202613301455s0123456789"  # month 13
    code, _, err = await cli(capsys, "withdrawals", "complete", str(w1.id), "--e2e-id", bad_date)
    assert code == 2 and "not a date" in err
    assert (await Withdrawal.get(id=w1.id)).status == "processing"  # nothing was sent

    code, out, _ = await cli(capsys, "withdrawals", "complete", str(w1.id), "--e2e-id", E2E)
    assert code == 0 and "completed" in out and E2E in out
    stored = await Withdrawal.get(id=w1.id)
    assert stored.status == "completed" and stored.transfer_id == E2E and stored.acted_by == ACTOR

    code, _, err = await cli(capsys, "withdrawals", "reject", str(w2.id))
    assert code == 2 and "needs a reason" in err
    code, out, _ = await cli(
        capsys, "withdrawals", "reject", str(w2.id), "--reason", "chave PIX de outra pessoa"
    )
    assert code == 0 and "rejected" in out and "chave PIX de outra pessoa" in out
    assert (await ledger.balance(tenant_id)).withdrawable_cents == 2_000  # back to the seller

    # A second approve is refused by the API: one line, exit 1, nothing changes.
    code, _, err = await cli(capsys, "withdrawals", "approve", str(w1.id))
    assert code == 1 and err.startswith("error: admin API answered 409") and err.count("\n") == 1
    code, _, err = await cli(capsys, "withdrawals", "approve", "999999")
    assert code == 1 and "404" in err
    actions = await AuditLog.filter(target_type="withdrawal", actor=ACTOR).order_by("id")
    assert [a.action for a in actions] == [
        "withdrawal.processing",
        "withdrawal.completed",
        "withdrawal.rejected",
    ]
    assert actions[1].after["transfer_id"] == E2E
    # Listing still works, and list filters are refused with an action.
    code, out, _ = await cli(capsys, "withdrawals", "--status", "completed")
    assert code == 0 and E2E in out and "1 withdrawal(s)" in out  # the proof is listed
    code, _, err = await cli(capsys, "withdrawals", "approve", str(w1.id), "--pending")
    assert code == 2 and "--pending" in err


async def test_cli_accounts_block_and_unblock_need_a_reason_and_are_audited(served, capsys):
    owner = await make_account(username="joana")
    await make_tenant(owner=owner)
    code, _, err = await cli(capsys, "accounts", "block", str(owner.id))
    assert code == 2 and "needs a reason" in err
    code, out, _ = await cli(capsys, "accounts", "block", str(owner.id), "--reason", "fraude")
    assert code == 0 and f"account {owner.id} (joana): blocked; reason: fraude" in out
    assert (await Account.get(id=owner.id)).blocked_reason == "fraude"
    code, out, _ = await cli(capsys, "accounts", "--blocked")
    assert code == 0 and "joana" in out and "fraude" in out and "1 account(s)" in out
    code, out, _ = await cli(capsys, "accounts", "unblock", str(owner.id), "--reason", "engano")
    assert code == 0 and "unblocked" in out
    assert not (await Account.get(id=owner.id)).blocked
    code, out, _ = await cli(capsys, "accounts", "--blocked")
    assert out.strip() == "no blocked accounts"
    entries = await AuditLog.filter(target_type="account", target_id=str(owner.id), actor=ACTOR)
    assert sorted(e.action for e in entries) == ["account.blocked", "account.unblocked"]
    with pytest.raises(SystemExit) as refused:  # argparse: ids are digits, exit 2
        await cli(capsys, "accounts", "block", "abc", "--reason", "x")
    assert refused.value.code == 2 and "digits only" in capsys.readouterr().err


async def test_cli_alerts_lists_open_ones_and_ack_records_the_note(served, capsys):
    tenant = await make_tenant()
    alert = await Alert.create(
        kind=AlertKind.CRASHLOOP, tenant=tenant, message="bot caiu 5 vezes", details={}
    )
    await Alert.create(
        kind=AlertKind.FOREIGN_GUILD, tenant=tenant, message="servidor alheio", details={}
    )
    code, out, _ = await cli(capsys, "alerts", "--kind", "crashloop")
    assert code == 0 and "bot caiu 5 vezes" in out and "servidor alheio" not in out
    code, out, _ = await cli(capsys, "alerts", "ack", str(alert.id), "--note", "token trocado")
    assert code == 0 and f"alert {alert.id} (crashloop) acknowledged by {ACTOR}" in out
    code, out, _ = await cli(capsys, "alerts")
    assert "bot caiu" not in out and "servidor alheio" in out and "1 alert(s)" in out
    code, out, _ = await cli(capsys, "alerts", "--all", "--kind", "crashloop")
    assert "bot caiu" in out and "yes" in out
    entry = await AuditLog.get(action="alert.acknowledged", target_id=str(alert.id))
    assert entry.after["note"] == "token trocado"
    code, _, err = await cli(capsys, "alerts", "ack")
    assert code == 2 and "needs an id" in err


async def test_cli_audit_filters_by_actor_action_target_and_since(served, capsys):
    _, (w,) = await _withdrawals([1_000])
    assert (await cli(capsys, "withdrawals", "approve", str(w.id)))[0] == 0
    code, out, _ = await cli(capsys, "audit", "--action", "withdrawal.", "--since", "1h")
    assert code == 0 and "withdrawal.processing" in out and f"withdrawal:{w.id}" in out
    assert "withdrawal.requested" in out  # the seller's request, by account:1
    code, out, _ = await cli(capsys, "audit", "--actor", ACTOR)
    lines = [line for line in out.splitlines() if "withdrawal." in line]
    assert len(lines) == 1 and "withdrawal.processing" in lines[0]
    code, out, _ = await cli(capsys, "audit", "--target", f"withdrawal:{w.id}", "--limit", "1")
    assert code == 0 and "1 of 2 entries (--limit for more)" in out
    code, out, _ = await cli(capsys, "audit", "--action", "withdrawal.", "--since", "2999-01-01")
    assert out.strip() == "no audit entries match"
    code, out, _ = await cli(capsys, "audit", "--target", f"withdrawal:{w.id}", "--json")
    assert code == 0 and '"before"' in out
    code, _, err = await cli(capsys, "audit", "--target", "withdrawal:")
    assert code == 2 and "TYPE:ID" in err


async def test_cli_requests_answer_an_appeal_and_the_queue_shows_the_next_command(served, capsys):
    owner = await make_account(username="bia", blocked=True, blocked_reason="chargebacks")
    await make_tenant(owner=owner)
    appeal = await open_appeal(owner.id, "Os chargebacks foram de um cliente só, já resolvi.")
    code, out, _ = await cli(capsys, "queue", "--type", "request")
    assert code == 0 and f"vitrine requests answer {appeal.id}" in out
    code, out, _ = await cli(capsys, "requests", "--kind", "unblock_appeal")
    assert code == 0 and "unblock_appeal" in out and "bia" in out
    code, _, err = await cli(capsys, "requests", "answer", str(appeal.id), "--message", "ok")
    assert code == 2 and "decision" in err
    code, out, _ = await cli(
        capsys, "requests", "answer", str(appeal.id), "--unblock", "--message", "Liberado."
    )
    assert code == 0 and "unblocked" in out and "Liberado." in out
    assert not (await Account.get(id=owner.id)).blocked
    assert (await AdminRequest.get(id=appeal.id)).status == "resolved"
    code, _, err = await cli(
        capsys, "requests", "answer", str(appeal.id), "--keep-blocked", "--message", "de novo"
    )
    assert code == 1 and "409" in err  # answered once only
    code, out, _ = await cli(capsys, "requests")
    assert out.strip() == "no open requests"


async def test_cli_resync_of_an_unknown_payment_is_one_line_404(served, capsys):
    code, _, err = await cli(capsys, "resync", "123456789")
    assert code == 1 and err.startswith("error: admin API answered 404") and err.count("\n") == 1
    code, _, err = await cli(capsys, "resync", "../../etc")
    assert code == 2 and "PAYMENT is our payment id" in err


async def test_cli_requests_resolve_closes_a_support_request_with_a_note(served, capsys):
    tenant = await make_tenant()
    req = await AdminRequest.create(
        kind="support", tenant=tenant, subject="Bot não responde", body="desde ontem"
    )
    code, _, err = await cli(capsys, "requests", "resolve", str(req.id))
    assert code == 2 and "--note" in err
    code, out, _ = await cli(capsys, "requests", "resolve", str(req.id), "--note", "Token trocado")
    assert code == 0 and f"request {req.id} (support): resolved; note: Token trocado" in out
    stored = await AdminRequest.get(id=req.id)
    assert stored.resolution_note == "Token trocado" and stored.resolved_by == ACTOR
    code, out, _ = await cli(capsys, "requests", "--all")
    assert "Bot não responde" in out and "resolved" in out
