"""Console pages for the runbook's actions: each shows a confirmation step, refuses a POST
without the session's CSRF token (or without the confirmation), acts, and is audited."""

from __future__ import annotations

import re
import uuid

from core.models import AuditLog
from fleet.models import Alert, AlertKind
from shop import ledger
from shop.appeals import open_appeal
from shop.models import Account, AdminRequest, Withdrawal
from shop.withdrawals import request_withdrawal
from tests.helpers.admin import TOKEN, make_account, make_order, make_tenant, make_variation
from web.admin.auth import token_label

ACTOR = f"admin:{token_label(TOKEN)}"
E2E = "E18236120202611301455s0123456789"


async def _login(client) -> str:
    assert (await client.post("/console/login", form={"token": TOKEN})).status_code == 302
    html = await (await client.get("/console/withdrawals")).get_data(as_text=True)
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


async def _withdrawal(amount: int = 2_500) -> Withdrawal:
    tenant = await make_tenant()
    order = await make_order(await make_variation(tenant, price=amount), status="delivered")
    await ledger.book_sale(str(uuid.uuid4()), tenant.id, order.id, amount, 0, 0)
    return await request_withdrawal(tenant.id, amount, "vendedor@example.com", "account:1")


async def test_console_withdrawal_approve_then_complete_with_a_checked_e2e_id(client):
    w = await _withdrawal()
    csrf = await _login(client)
    listing = await (await client.get("/console/withdrawals")).get_data(as_text=True)
    assert "R$ 25,00" in listing and f"/console/withdrawals/{w.id}/approve" in listing
    dashboard = await (await client.get("/")).get_data(as_text=True)
    assert f"/console/withdrawals/{w.id}/approve" in dashboard
    confirm = await client.get(f"/console/withdrawals/{w.id}/approve")
    assert confirm.status_code == 200
    assert "Aprovar o saque" in await confirm.get_data(as_text=True)  # pt-BR by default

    url = f"/console/withdrawals/{w.id}/approve"
    assert (await client.post(url, form={"confirm": "yes"})).status_code == 403  # no CSRF
    unconfirmed = await client.post(url, form={"csrf": csrf})
    assert unconfirmed.status_code == 400
    assert (await Withdrawal.get(id=w.id)).status == "requested"
    done = await client.post(url, form={"csrf": csrf, "confirm": "yes"})
    assert done.status_code == 302 and (await Withdrawal.get(id=w.id)).status == "processing"

    url = f"/console/withdrawals/{w.id}/complete"
    bad = await client.post(url, form={"csrf": csrf, "confirm": "yes", "e2e_id": "E123"})
    assert bad.status_code == 400
    assert "ID fim a fim inválido" in await bad.get_data(as_text=True)
    done = await client.post(url, form={"csrf": csrf, "confirm": "yes", "e2e_id": E2E})
    assert done.status_code == 302
    stored = await Withdrawal.get(id=w.id)
    assert stored.status == "completed" and stored.transfer_id == E2E and stored.acted_by == ACTOR
    flashed = await (await client.get("/console/withdrawals")).get_data(as_text=True)
    assert f"Saque #{w.id} concluído" in flashed
    entry = await AuditLog.get(action="withdrawal.completed", target_id=str(w.id))
    assert entry.actor == ACTOR and entry.after["transfer_id"] == E2E


async def test_console_withdrawal_reject_needs_a_reason(client):
    w = await _withdrawal(1_000)
    csrf = await _login(client)
    url = f"/console/withdrawals/{w.id}/reject"
    assert (await client.post(url, form={"csrf": csrf, "confirm": "yes"})).status_code == 400
    done = await client.post(url, form={"csrf": csrf, "confirm": "yes", "reason": "chave errada"})
    assert done.status_code == 302
    assert (await Withdrawal.get(id=w.id)).reason == "chave errada"
    assert (await ledger.balance(w.tenant_id)).withdrawable_cents == 1_000


async def test_console_block_and_unblock_with_confirmation_csrf_and_audit(client):
    owner = await make_account(username="caio")
    csrf = await _login(client)
    listing = await (await client.get("/console/accounts?q=caio")).get_data(as_text=True)
    assert f"/console/accounts/{owner.id}/block" in listing
    url = f"/console/accounts/{owner.id}/block"
    page = await (await client.get(url)).get_data(as_text=True)
    assert "Bloquear a conta" in page and 'name="reason"' in page
    refused = await client.post(url, form={"confirm": "yes", "reason": "fraude"})
    assert refused.status_code == 403 and not (await Account.get(id=owner.id)).blocked
    other_site = await client.post(
        url,
        form={"csrf": csrf, "confirm": "yes", "reason": "fraude"},
        headers={"Origin": "https://evil.example"},
    )
    assert other_site.status_code == 403
    done = await client.post(url, form={"csrf": csrf, "confirm": "yes", "reason": "fraude"})
    assert done.status_code == 302 and (await Account.get(id=owner.id)).blocked
    done = await client.post(
        f"/console/accounts/{owner.id}/unblock",
        form={"csrf": csrf, "confirm": "yes", "reason": "engano"},
    )
    assert done.status_code == 302 and not (await Account.get(id=owner.id)).blocked
    actions = await AuditLog.filter(target_type="account", actor=ACTOR).order_by("id")
    assert [a.action for a in actions] == ["account.blocked", "account.unblocked"]


async def test_console_alert_ack_and_audit_page_filters(client):
    alert = await Alert.create(kind=AlertKind.CRASHLOOP, message="caiu 5x", details={})
    csrf = await _login(client)
    assert "caiu 5x" in await (await client.get("/console/alerts")).get_data(as_text=True)
    url = f"/console/alerts/{alert.id}/ack"
    assert (await client.post(url, form={"confirm": "yes"})).status_code == 403
    done = await client.post(url, form={"csrf": csrf, "confirm": "yes", "note": "visto"})
    assert done.status_code == 302
    assert (await Alert.get(id=alert.id)).acknowledged_by == ACTOR
    assert "caiu 5x" not in await (await client.get("/console/alerts")).get_data(as_text=True)
    audit = await client.get("/console/audit?action=alert.&since=2020-01-01")
    html = await audit.get_data(as_text=True)
    assert audit.status_code == 200 and "alert.acknowledged" in html and f"alert:{alert.id}" in html
    none = await (await client.get("/console/audit?action=withdrawal.")).get_data(as_text=True)
    assert "alert.acknowledged" not in none


async def test_console_answers_an_unblock_appeal(client):
    owner = await make_account(username="lia", blocked=True, blocked_reason="spam")
    appeal = await open_appeal(owner.id, "Foi um engano, nunca mandei spam.")
    csrf = await _login(client)
    listing = await (await client.get("/console/requests")).get_data(as_text=True)
    assert "nunca mandei spam" in listing and f"/console/requests/{appeal.id}/answer" in listing
    dashboard = await (await client.get("/")).get_data(as_text=True)
    assert f"/console/requests/{appeal.id}/answer" in dashboard  # from the work queue too
    url = f"/console/requests/{appeal.id}/answer"
    page = await (await client.get(url)).get_data(as_text=True)
    assert 'value="unblock"' in page and "spam" in page  # the block's reason is shown
    form = {"decision": "unblock", "message": "Conta liberada.", "confirm": "yes"}
    assert (await client.post(url, form=form)).status_code == 403
    missing = await client.post(url, form={**form, "csrf": csrf, "message": ""})
    assert missing.status_code == 400
    assert (await client.post(url, form={**form, "csrf": csrf})).status_code == 302
    assert not (await Account.get(id=owner.id)).blocked
    req = await AdminRequest.get(id=appeal.id)
    assert req.status == "resolved" and req.resolution_note == "Conta liberada."
    answered = await AuditLog.get(action="appeal.answered", target_id=str(appeal.id))
    assert answered.actor == ACTOR and answered.after["decision"] == "unblock"
