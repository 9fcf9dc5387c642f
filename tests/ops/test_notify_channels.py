"""Operators' alert messages through a real SMTP server and the sandbox's Discord webhook:
every kind raised and resolved, storms folded into one message, failures retried without
holding up whoever raised the alert."""

from __future__ import annotations

from datetime import timedelta

from fleet.alerting import alert_key, raise_alert, resolve_alert
from fleet.models import Alert, AlertKind
from ops.process_tools import free_port
from shop.notify.dispatch import BACKOFF_BASE_S
from tests.ops.notify_fixtures import (
    SmtpServer,
    dispatcher,
    http,
    later,
    notify_settings,
    smtp_server,
    wait_for_mail,
    webhook,
)

__all__ = ["http", "smtp_server", "webhook"]  # fixtures


async def test_notify_every_kind_is_mailed_and_posted_once_raised_and_once_resolved(
    db, smtp_server, webhook, http
):
    notify = notify_settings(webhook, smtp_server.port)
    d = dispatcher(notify, http)
    for kind in AlertKind:
        await raise_alert(kind, f"{kind} happened", key=alert_key(kind, "t"))
        await raise_alert(kind, f"{kind} happened again", key=alert_key(kind, "t"))  # dedup
    report = await d.run_once(later())
    assert report.failures == []
    subjects = await wait_for_mail(smtp_server, len(AlertKind))
    assert len(subjects) == len(AlertKind)
    assert all(s.startswith("[Vitrine] ALERTA: ") and s.endswith("(1)") for s in subjects)
    posted = await webhook.messages()
    assert len(posted) == len(AlertKind)
    assert "bot em crash loop" in " ".join(m["content"] for m in posted)
    first = posted[0]["embeds"][0]
    assert first["url"] == "https://admin.example.com/" and "2×" in first["description"]

    assert (await d.run_once(later())).messages == 0  # nothing owed twice
    for kind in AlertKind:
        assert await resolve_alert(alert_key(kind, "t"))
    await d.run_once(later())
    subjects = await wait_for_mail(smtp_server, 2 * len(AlertKind))
    assert sum(s.startswith("[Vitrine] RESOLVIDO: ") for s in subjects) == len(AlertKind)
    assert len(await webhook.messages()) == 2 * len(AlertKind)
    assert await Alert.filter(notify_at__isnull=False).count() == 0


async def test_notify_200_bots_failing_together_make_one_message_per_channel(
    db, smtp_server, webhook, http
):
    d = dispatcher(notify_settings(webhook, smtp_server.port), http)
    for i in range(200):
        await raise_alert(AlertKind.CRASHLOOP, f"bot {i} crashed", key=f"crashloop:storm:{i}")
    report = await d.run_once(later())
    assert (report.claimed, report.messages) == (200, 2)
    subjects = await wait_for_mail(smtp_server, 1)
    assert subjects == ["[Vitrine] ALERTA: bot em crash loop (200)"]
    body = smtp_server.inbox.messages[0].get_content()
    assert "… e mais 190" in body and "https://admin.example.com/" in body
    [posted] = await webhook.messages()
    assert posted["content"].endswith("(200)")

    for i in range(200):
        await resolve_alert(f"crashloop:storm:{i}")
    await d.run_once(later())
    subjects = await wait_for_mail(smtp_server, 2)
    assert subjects[1] == "[Vitrine] RESOLVIDO: bot em crash loop (200)"
    assert len(await webhook.messages()) == 2


async def test_notify_kind_waits_out_the_min_interval_then_counts_what_came(db, smtp_server, http):
    d = dispatcher(notify_settings(None, smtp_server.port, min_interval_s=3600), http)
    await raise_alert(AlertKind.CONFIG_ERROR, "token invalid", key="config_error:a")
    await d.run_once(later())
    for i in range(5):
        await raise_alert(AlertKind.CONFIG_ERROR, "token invalid", key=f"config_error:b{i}")
    report = await d.run_once(later())
    assert report.messages == 0 and report.deferred == 5
    assert await wait_for_mail(smtp_server, 1) == [
        "[Vitrine] ALERTA: erro de configuração do bot (1)"
    ]
    due = await Alert.filter(key__startswith="config_error:b").values_list("notify_at", flat=True)
    assert all(at > later(3000) for at in due)


async def test_notify_dead_smtp_never_blocks_the_raiser_and_is_retried_later(db, webhook, http):
    port = free_port()  # nothing listens here yet
    d = dispatcher(notify_settings(webhook, port), http)
    alert, opened = await raise_alert(AlertKind.NODE_DOWN, "node-2 stopped", key="node_down:n2")
    assert opened and alert.notify_at is not None  # the raiser only wrote the row

    first_try = later()
    report = await d.run_once(first_try)
    assert report.messages == 1 and len(report.failures) == 1  # the webhook took it
    alert = await Alert.get(id=alert.id)
    assert alert.notify_attempts == 1 and "smtp" in (alert.notify_error or "")
    assert alert.notify_at >= first_try + timedelta(seconds=BACKOFF_BASE_S)
    assert alert.notified["raised"] == ["discord"]
    assert (await d.run_once(first_try)).claimed == 0  # not before its backoff

    server = SmtpServer(port)
    server.start()
    try:
        report = await d.run_once(alert.notify_at)
        assert report.failures == [] and report.messages == 1
        assert await wait_for_mail(server, 1) == [
            "[Vitrine] ALERTA: nó do orquestrador fora do ar (1)"
        ]
    finally:
        server.stop()
    assert len(await webhook.messages()) == 1  # not posted twice
    alert = await Alert.get(id=alert.id)
    assert alert.notify_at is None and sorted(alert.notified["raised"]) == ["discord", "email"]


async def test_notify_webhook_429_is_waited_out_or_handed_to_the_backoff(db, webhook, http):
    d = dispatcher(notify_settings(webhook, None), http)
    await webhook.rate_limit(1, 0.05)
    await raise_alert(AlertKind.DISK_SPACE, "10 MB free", key="disk_space:h")
    report = await d.run_once(later())
    assert report.failures == [] and len(await webhook.messages()) == 1

    await webhook.rate_limit(1, 120)
    await raise_alert(AlertKind.BACKUP_STALE, "9 days", key="backup_stale")
    moment = later()
    report = await d.run_once(moment)
    assert len(report.failures) == 1 and len(await webhook.messages()) == 1
    alert = await Alert.get(key="backup_stale")
    assert alert.notify_at >= moment + timedelta(seconds=120)  # Discord's retry_after
    await d.run_once(alert.notify_at)
    assert len(await webhook.messages()) == 2


async def test_notify_service_built_from_settings_sends_and_checks(
    db, redis_url, smtp_server, webhook, tmp_path, monkeypatch
):
    import asyncio

    from shop.notify.service import run_notifications
    from tests.helpers.portal import portal_settings

    monkeypatch.setenv("ALERT_AGGREGATION_SECONDS", "0")
    monkeypatch.setenv("ALERT_SEND_INTERVAL_SECONDS", "0.05")
    settings = portal_settings(
        tmp_path,
        db,
        redis_url,
        ALERT_DISCORD_WEBHOOK_URL=webhook.url,
        ALERT_SMTP_HOST="127.0.0.1",
        ALERT_SMTP_PORT=str(smtp_server.port),
        ALERT_SMTP_SECURITY="none",
        ALERT_EMAIL_FROM="vitrine@example.com",
        ALERT_EMAIL_TO="ops@example.com",
        ALERT_DISK_MIN_FREE_MB="10000000",  # the check raises disk_space at once
    )
    stop = asyncio.Event()
    task = asyncio.create_task(run_notifications(settings, None, stop))
    try:
        subjects = await wait_for_mail(smtp_server, 1, timeout=10)
    finally:
        stop.set()
        await task
    assert subjects == ["[Vitrine] ALERTA: pouco espaço em disco (1)"]
    assert len(await webhook.messages()) == 1


async def test_notify_sandbox_webhook_answers_like_discord(webhook, http):
    bad = webhook.url.rsplit("/", 1)[0] + "/wrong-token"
    resp = await http.post(bad, json={"content": "x"})
    assert resp.status_code == 401 and resp.json()["code"] == 50027
    resp = await http.post(webhook.url, json={})
    assert resp.status_code == 400 and resp.json()["code"] == 50006
    resp = await http.post(webhook.url, json={"content": "no wait"})
    assert resp.status_code == 204
    resp = await http.post(webhook.url, params={"wait": "true"}, json={"embeds": [{"title": "t"}]})
    assert resp.status_code == 200 and resp.json()["webhook_id"] == webhook.id
    await webhook.rate_limit(1, 2.5)
    resp = await http.post(webhook.url, json={"content": "x"})
    assert resp.status_code == 429 and resp.json()["retry_after"] == 2.5
    assert resp.headers["Retry-After"] == "2.5"
    assert [m["content"] for m in await webhook.messages()] == ["no wait", ""]
