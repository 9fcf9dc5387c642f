"""Each alert kind raised where the fact is known and resolved when the condition clears
(`shop.notify.checks`), then told to the operators through real SMTP and the sandbox
webhook: one "ALERTA" and one "RESOLVIDO" message per kind."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from core.i18n import t
from fleet import keys
from fleet.alerting import alert_key, raise_alert, repeated_error
from fleet.guildscope import record_foreign_guild
from fleet.models import Alert, AlertKind, BotInstance
from fleet.runtime import LastError, RuntimeStore
from orchestrator import alerts as orch_alerts
from shop.models import Account, Order, StockItem, Withdrawal
from shop.notify.checks import AlertChecks
from shop.notify.stock_watch import watch_low_stock
from shop.payments.webhook_guard import raise_forgery_alert
from shop.states import OrderStatus, WithdrawalStatus
from tests.ops.notify_fixtures import (
    dispatcher,
    http,
    later,
    notify_settings,
    smtp_server,
    wait_for_mail,
    webhook,
)
from tests.shop.helpers import make_order, make_store

__all__ = ["http", "smtp_server", "webhook"]  # fixtures
K = AlertKind


async def _open(kind: AlertKind) -> list[Alert]:
    return await Alert.filter(kind=kind, open_key__isnull=False)


async def test_notify_kinds_raised_at_their_source_and_resolved_when_cleared(
    db, redis_client, smtp_server, webhook, http, tmp_path
):
    backups = tmp_path / "backups"
    strict = notify_settings(
        webhook,
        smtp_server.port,
        disk_min_free_mb=10**9,  # every disk is "full"
        backup_dir=str(backups),
        withdrawal_sla_hours=24,
    )
    checks = AlertChecks(strict, tmp_path / "data", redis_client)
    store = await make_store(stock=1)  # the store's threshold is 5
    tenant, bot = store["tenant"], store["instance"]
    iid = bot.id
    runtime = RuntimeStore(redis_client)

    # --- raised where the fact is known --------------------------------------------------
    await orch_alerts.crashloop_alert(iid, tenant.id, 5, [])
    await orch_alerts.config_error_alert(iid, tenant.id, "token inválido", "4004")
    await orch_alerts.auto_suspend(iid, tenant.id, "suspenso após 20 falhas", [])
    for _ in range(5):
        await runtime.set_last_error(iid, "boom", "1")
    history = await runtime.error_history(iid)
    hit = repeated_error(history, time.time(), 5)
    assert hit is not None and hit.message == "boom"
    await orch_alerts.repeated_error_alert(iid, tenant.id, hit.message, 5)
    assert await watch_low_stock(store["variation"].id)  # 1 available < 5
    order = await make_order(store, reserve=False)
    await Order.filter(id=order.id).update(status=OrderStatus.WAITING_STOCK)
    await raise_alert(
        K.WAITING_STOCK,
        "waiting",
        key=alert_key(K.WAITING_STOCK, f"order:{order.id}"),
        tenant_id=tenant.id,
        details={"order_id": order.id, "quantity": 1},
    )
    await raise_forgery_alert(500, 120)
    await raise_forgery_alert(700, 120)  # the same open alert counts it
    await record_foreign_guild(iid, tenant.id, "999", "Outro", 12)
    await raise_alert(K.PAYMENT_LATE, "found late", tenant_id=tenant.id)
    await Account.filter(id=tenant.owner_id).update(
        created_at=datetime.now(UTC) - timedelta(days=30)
    )
    w = await Withdrawal.create(
        tenant=tenant, amount_cents=5000, pix_key_type="email", pix_key="a@b.c"
    )
    await Withdrawal.filter(id=w.id).update(requested_at=datetime.now(UTC) - timedelta(days=2))
    await redis_client.sadd(keys.ORCHESTRATOR_NODES, "node-gone")
    assert await checks.run_once() == []
    # (shop.balance_alerts raises it after a refund; the balance check would clear it at once)
    await raise_alert(K.NEGATIVE_BALANCE, "saldo -R$ 5,00", tenant_id=tenant.id)
    for kind in K:
        assert len(await _open(kind)) == 1, kind
    assert (await Alert.get(kind=K.WEBHOOK_FORGERY)).occurrences == 2
    assert "backup" in (await Alert.get(kind=K.BACKUP_STALE)).message

    report = await dispatcher(strict, http).run_once(later())
    assert report.failures == [] and report.messages == 2 * len(K)

    # --- the conditions clear --------------------------------------------------------------
    await redis_client.hset(keys.runtime(iid), "state", "online")
    await BotInstance.filter(id=iid).update(suspended=False)
    await runtime.set_last_error(iid, "something else", "1")
    for i in range(5):
        await StockItem.create(
            tenant=tenant, variation=store["variation"], content_enc="e", content_hash=f"h{i}"
        )
    await Order.filter(id=order.id).update(status=OrderStatus.DELIVERED)
    await Withdrawal.filter(id=w.id).update(status=WithdrawalStatus.COMPLETED)
    await redis_client.set(keys.orchestrator_heartbeat("node-gone"), "1", ex=30)
    backups.mkdir()
    (backups / "vitrine-20261130-000000.tar.gz").write_bytes(b"x")
    relaxed = notify_settings(
        webhook, smtp_server.port, backup_dir=str(backups), disk_min_free_mb=0
    )
    checks = AlertChecks(relaxed, tmp_path / "data", redis_client)
    assert await checks.run_once() == []
    await checks.one_off(datetime.now(UTC) + timedelta(hours=2))  # the calm after one-offs
    assert await Alert.filter(open_key__isnull=False).count() == 0

    await dispatcher(relaxed, http).run_once(later())
    subjects = await wait_for_mail(smtp_server, 2 * len(K))
    for kind in K:
        what = t(f"notify.kind.{kind}", "pt-BR")
        assert f"[Vitrine] ALERTA: {what} (1)" in subjects, kind
        assert f"[Vitrine] RESOLVIDO: {what} (1)" in subjects, kind
    assert len(subjects) == 2 * len(K)
    assert len(await webhook.messages()) == 2 * len(K)


async def test_notify_repeated_error_needs_the_same_error_n_times_in_24h():
    now = time.time()
    same = [LastError("boom", "1", now - i) for i in range(4)]
    assert repeated_error(same, now, 5) is None
    assert repeated_error([*same, LastError("boom", "1", now - 10)], now, 5) is not None
    old = [*same, LastError("boom", "1", now - 90_000)]
    assert repeated_error(old, now, 5) is None  # the fifth is older than 24 h
    assert repeated_error([*same, LastError("other", "1", now + 1)], now, 4) is None


def test_notify_settings_read_from_the_environment_and_refuse_bad_values():
    import pytest

    from core.errors import ConfigError
    from core.notify_settings import load_notify_settings

    env = {
        "ALERT_DISCORD_WEBHOOK_URL": "https://discord.com/api/webhooks/123/abc-DEF_1",
        "ALERT_SMTP_HOST": "smtp.example.com",
        "ALERT_EMAIL_TO": "a@example.com, b@example.com",
        "ALERT_EMAIL_FROM": "vitrine@example.com",
        "ALERT_SMTP_SECURITY": "tls",
        "ADMIN_PUBLIC_URL": "https://admin.example.com/",
    }
    n = load_notify_settings(env.get)
    assert (
        n.email_enabled and n.smtp_port == 465 and n.email_to == ("a@example.com", "b@example.com")
    )
    assert n.admin_public_url == "https://admin.example.com" and "abc" not in repr(n)
    for name, bad in (
        ("ALERT_DISCORD_WEBHOOK_URL", "https://example.com/hook"),
        ("ALERT_EMAIL_TO", "not-an-address"),
        ("ALERT_SMTP_SECURITY", "ssl3"),
        ("WITHDRAWAL_SLA_HOURS", "0"),
    ):
        with pytest.raises(ConfigError, match=name):
            load_notify_settings({**env, name: bad}.get)
