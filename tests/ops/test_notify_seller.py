"""The store owner hears from their own bot (a DM through the Discord sandbox) and on the
dashboard list; each kind can be turned off; a bot that cannot log in cannot DM."""

from __future__ import annotations

from cryptography.fernet import Fernet

from core.vault import TokenVault
from fleet.alerting import raise_alert
from fleet.models import AlertKind, BotInstance
from orchestrator import alerts as orch_alerts
from shop.models import Account, NoticeKind, NoticeStatus, SellerNotice, Tenant, Withdrawal
from shop.notify.seller import SellerDM, notify_seller, recent_notices, set_turned_off
from shop.withdrawals import approve_withdrawal, complete_withdrawal
from tests.ops.notify_fixtures import dispatcher, http, later, notify_settings

__all__ = ["http"]  # fixtures


async def _store(dc, vault: TokenVault, locale: str = "pt-BR"):
    bot = await dc.create_bot("LojaBot")
    owner = await dc.create_user("dona", locale=locale)
    await dc.create_guild("Loja", owner_id=owner["id"], bots=[bot])
    account = await Account.create(discord_id=owner["id"], username="dona", locale=locale)
    tenant = await Tenant.create(owner=account, name="Loja da Dona")
    inst = await BotInstance.create(tenant=tenant, token_enc=vault.encrypt(bot.token))
    return bot, owner, tenant, inst


async def test_notify_seller_dm_on_withdrawal_change_and_silence_when_turned_off(
    db, sandbox, dc, http
):
    vault = TokenVault([Fernet.generate_key().decode()])
    bot, owner, tenant, _inst = await _store(dc, vault)
    sender = SellerDM(sandbox.discord_api_base, vault, http)
    w = await Withdrawal.create(
        tenant=tenant, amount_cents=12345, pix_key_type="email", pix_key="a@b.c"
    )
    await approve_withdrawal(w.id, "admin:test")
    await approve_withdrawal(w.id, "admin:test")  # a double click tells nobody twice
    assert await sender.run_once() == 1
    [dm] = await dc.dms(owner["id"], bot)
    assert f"saque #{w.id} de R$ 123,45 agora está em processamento" in dm.content

    await set_turned_off(tenant, {"withdrawal", "bogus"})
    assert (await Tenant.get(id=tenant.id)).notices_off == ["withdrawal"]
    await complete_withdrawal(w.id, "admin:test", "E2E123")
    assert await sender.run_once() == 0
    assert len(await dc.dms(owner["id"], bot)) == 1
    statuses = [n.status for n in await recent_notices(tenant.id)]
    assert statuses == [NoticeStatus.OFF, NoticeStatus.SENT]  # the dashboard lists both


async def test_notify_seller_bot_that_cannot_log_in_leaves_the_notice_on_the_dashboard(
    db, sandbox, dc, http
):
    vault = TokenVault([Fernet.generate_key().decode()])
    bot, owner, tenant, inst = await _store(dc, vault, locale="en")
    await orch_alerts.config_error_alert(inst.id, tenant.id, "invalid token", "4004")
    d = dispatcher(notify_settings(None, None), http)
    await d.run_once(later())  # no operator channel: the seller's notice is still made
    [notice] = await SellerNotice.filter(tenant_id=tenant.id)
    assert notice.kind == NoticeKind.BOT_LOGIN and notice.params["error"] == "invalid token"
    await SellerDM(sandbox.discord_api_base, vault, http).run_once()
    notice = await SellerNotice.get(id=notice.id)
    assert notice.status == NoticeStatus.NO_BOT and notice.send_at is None
    assert await dc.dms(owner["id"], bot) == []


async def test_notify_seller_low_stock_alert_reaches_the_owner_in_english(db, sandbox, dc, http):
    vault = TokenVault([Fernet.generate_key().decode()])
    bot, owner, tenant, _inst = await _store(dc, vault, locale="en")
    details = {"product": "Key", "variation": "1 month", "available": 1, "threshold": 5}
    await raise_alert(
        AlertKind.LOW_STOCK, "low", key="low_stock:v1", tenant_id=tenant.id, details=details
    )
    d = dispatcher(notify_settings(None, None), http)
    await d.run_once(later())
    await d.run_once(later())  # the notice is made once
    assert await SellerNotice.filter(tenant_id=tenant.id).count() == 1
    assert await SellerDM(sandbox.discord_api_base, vault, http).run_once() == 1
    [dm] = await dc.dms(owner["id"], bot)
    assert dm.content == "📦 Vitrine: low stock for Key — 1 month: 1 available (threshold 5)."


async def test_notify_seller_refund_notice_once_per_booking(db):
    owner = await Account.create(discord_id="42", username="x")
    tenant = await Tenant.create(owner=owner, name="L")
    params = {"order_id": 7, "amount_cents": 500}
    assert await notify_seller(tenant.id, NoticeKind.REFUND, params, dedupe="refund:p1:500")
    assert await notify_seller(tenant.id, NoticeKind.REFUND, params, dedupe="refund:p1:500") is None
    assert await SellerNotice.filter(tenant_id=tenant.id).count() == 1
