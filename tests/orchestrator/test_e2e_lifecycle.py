"""End to end, real processes: orchestrator -> zygote -> workers -> sandbox Discord."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from fleet.control_protocol import Action, ResultCode, send_command
from fleet.models import Alert, AlertKind, BotInstance
from fleet.states import InstanceState
from ops.fleet_harness import alive
from shop.models.accounts import Account

pytestmark = pytest.mark.e2e
S = InstanceState


async def test_healthy_worker_killed_with_sigkill_is_back_online_within_2s(fleet, dc):
    bot = await dc.create_bot("Loja")
    iid = await fleet.add_instance(bot.token)
    fleet.start()
    first = await fleet.wait_state(iid, S.ONLINE, timeout=20)
    killed_at = time.monotonic()
    os.kill(first.pid, signal.SIGKILL)
    second = await fleet.wait_state(iid, S.ONLINE, new_pid_than=first.pid, timeout=5)
    assert time.monotonic() - killed_at < 2.0
    assert second.crashes[0]["code"] == "signal:9"
    assert "sinal 9" in (await fleet.store.error_history(iid))[0].message


async def test_crashing_bot_backs_off_0_1_2_4_then_crashloop_alert_then_auto_suspend(fleet, dc):
    fleet.env.update(VITRINE_POLICY_CRASHLOOP_COUNT="4", VITRINE_POLICY_SUSPEND_AFTER="5")
    bot = await dc.create_bot("Loja")
    iid = await fleet.add_instance(bot.token)
    fleet.start()
    rec = await fleet.wait_state(iid, S.ONLINE, timeout=20)
    delays = []
    for _ in range(4):
        killed_at = time.time()
        os.kill(rec.pid, signal.SIGKILL)
        old = rec.pid
        rec = await fleet.wait_state(iid, S.ONLINE, new_pid_than=old, timeout=15)
        spawned_at = float(await fleet.redis.hget(f"vitrine:inst:{iid}:rt", "spawned_at"))
        delays.append(spawned_at - killed_at)
    # policy with base 1 s (production: 10 s): at once, then 1, 2, 4 s, +/-10 % jitter
    for got, want in zip(delays, [0, 1, 2, 4], strict=True):
        assert want * 0.9 - 0.05 <= got <= want * 1.1 + 0.3, delays
    alerts = await Alert.filter(instance_id=iid)
    assert [a.kind for a in alerts] == [AlertKind.CRASHLOOP]
    assert len(alerts[0].details["last_errors"]) == 4
    os.kill(rec.pid, signal.SIGKILL)  # 5th crash of the streak: suspended automatically
    await fleet.wait_state(iid, S.SUSPENDED, timeout=10)
    inst = await BotInstance.get(id=iid)
    assert inst.suspended and "5 vezes" in inst.suspension_reason
    assert await Alert.filter(instance_id=iid, kind=AlertKind.AUTO_SUSPENDED).count() == 1
    from core.models import AuditLog

    assert await AuditLog.filter(action="instance.auto_suspend", target_id=str(iid)).count() == 1


@pytest.mark.parametrize("fault,code", [("invalid_token", "401"), ("gateway_auth_fail", "4004")])
async def test_invalid_token_ends_in_error_after_exactly_one_attempt(fleet, dc, fault, code):
    bot = await dc.create_bot("Loja")
    await dc.set_faults(bot, **{fault: True})
    iid = await fleet.add_instance(bot.token)
    fleet.start()
    rec = await fleet.wait_state(iid, S.ERROR, timeout=20)
    assert rec.last_error.code == code
    assert rec.last_error.message.startswith(
        "Token inválido: gere um novo token no Discord Developer Portal e salve-o no painel"
    )
    await asyncio.sleep(3)  # several backoff periods of the shortened policy: nothing more
    logins = await dc.requests(bot, "GET", "/users/@me")
    assert len(logins) == 1
    assert (await fleet.record(iid)).state == S.ERROR
    # the tenant saves a new token: config_version goes up and the bot starts again
    await dc.clear_faults(bot)
    inst = await BotInstance.get(id=iid)
    inst.config_version += 1
    await inst.save()
    rec = await fleet.wait_state(iid, S.ONLINE, timeout=15)
    assert rec.last_error is None


async def test_missing_privileged_intent_is_a_config_error_in_portuguese(fleet, dc):
    fleet.env["VITRINE_WORKER_EXTENSIONS"] = "tests.worker.members_ext"
    bot = await dc.create_bot("Loja")  # no privileged intents enabled in the portal
    iid = await fleet.add_instance(bot.token)
    fleet.start()
    rec = await fleet.wait_state(iid, S.ERROR, timeout=20)
    assert rec.last_error.code == "4014"
    assert rec.last_error.message.startswith("Ative o intent Server Members Intent")


async def test_suspend_stops_and_survives_orchestrator_restart_then_resume(fleet, dc):
    bot = await dc.create_bot("Loja")
    iid = await fleet.add_instance(bot.token)
    fleet.start()
    rec = await fleet.wait_state(iid, S.ONLINE, timeout=20)
    res = await send_command(
        fleet.redis, Action.SUSPEND, iid, reason="chargeback", actor="admin:ana"
    )
    assert res.ok and res.state == "suspended", res
    assert not alive(rec.pid)
    assert (await fleet.stop()) == 0  # graceful stop of the daemon (supervisorctl stop)
    fleet.start()
    await fleet.wait_for("orchestrator status", fleet.orchestrator_status)
    await asyncio.sleep(1.5)
    after = await fleet.record(iid)
    assert after.state == S.SUSPENDED and after.pid is None
    refused = await send_command(fleet.redis, Action.RESTART, iid, actor="tenant:1")
    assert not refused.ok and refused.code == ResultCode.SUSPENDED
    assert "suspended by an admin: chargeback" in refused.message
    res = await send_command(fleet.redis, Action.RESUME, iid, actor="admin:ana")
    assert res.ok, res
    await fleet.wait_state(iid, S.ONLINE, timeout=15)
    inst = await BotInstance.get(id=iid)
    assert not inst.suspended and inst.suspension_reason is None


async def test_restart_command_replaces_the_process_and_stop_keeps_it_down(fleet, dc):
    bot = await dc.create_bot("Loja")
    iid = await fleet.add_instance(bot.token)
    fleet.start()
    rec = await fleet.wait_state(iid, S.ONLINE, timeout=20)
    res = await send_command(fleet.redis, "restart", iid, actor="admin:ana")
    assert res.ok and res.state == "starting", res
    new = await fleet.wait_state(iid, S.ONLINE, new_pid_than=rec.pid, timeout=10)
    assert new.crashes == []  # a requested restart is not a crash
    res = await send_command(fleet.redis, "stop", iid, actor="tenant:1")
    assert res.ok and res.state == "stopped"
    assert not alive(new.pid)
    assert (await BotInstance.get(id=iid)).desired_state == "stopped"
    res = await send_command(fleet.redis, "start", iid, actor="tenant:1")
    assert res.ok
    await fleet.wait_state(iid, S.ONLINE, timeout=10)


async def test_blocking_the_owner_stops_the_bot_and_unblocking_restores_it(fleet, dc):
    bot = await dc.create_bot("Loja")
    iid = await fleet.add_instance(bot.token)
    fleet.start()
    rec = await fleet.wait_state(iid, S.ONLINE, timeout=20)
    inst = await BotInstance.get(id=iid).prefetch_related("tenant")
    # the admin API only writes the database; the orchestrator notices by itself
    await Account.filter(id=inst.tenant.owner_id).update(blocked=True)
    blocked_at = time.monotonic()
    await fleet.wait_state(iid, S.STOPPED, timeout=10)
    assert time.monotonic() - blocked_at < 5
    assert not alive(rec.pid)
    await Account.filter(id=inst.tenant.owner_id).update(blocked=False)
    await fleet.wait_state(iid, S.ONLINE, timeout=10)


async def test_worker_with_blocked_event_loop_is_detected_and_replaced(fleet, dc):
    fleet.env["VITRINE_WORKER_EXTENSIONS"] = "tests.worker.blocking_ext"
    bot = await dc.create_bot("Loja")
    iid = await fleet.add_instance(bot.token)
    fleet.start()
    rec = await fleet.wait_state(iid, S.ONLINE, timeout=20)
    await dc.wait_commands(bot, ["status", "block"])
    buyer = await dc.buyer("ana")
    await buyer.slash_dm(bot, "block")
    new = await fleet.wait_state(iid, S.ONLINE, new_pid_than=rec.pid, timeout=20)
    assert not alive(rec.pid)
    assert new.crashes[0]["code"] == "stuck"
    errors = await fleet.store.error_history(iid)
    assert errors[0].message == "O bot parou de responder e foi reiniciado."


async def test_session_start_limit_exhausted_waits_for_reset(fleet, dc):
    bot = await dc.create_bot("Loja")
    await dc.set_session_start_limit(bot, total=1000, remaining=0, reset_after_ms=60_000)
    iid = await fleet.add_instance(bot.token)
    fleet.start()
    rec = await fleet.wait_state(iid, S.BACKOFF, timeout=20)
    assert rec.last_error.code in ("session_limit", "session_start_limit")
    assert rec.last_error.message.startswith("O bot atingiu o limite diário de conexões")
    assert 50 < rec.next_start_at - time.time() <= 61
    assert (await dc.bot_info(bot))["identify_count"] == 0


async def test_status_extension_answers_with_latency(fleet, dc):
    bot = await dc.create_bot("Loja")
    iid = await fleet.add_instance(bot.token)
    fleet.start()
    await fleet.wait_state(iid, S.ONLINE, timeout=20)
    await dc.wait_commands(bot, ["status"])
    buyer = await dc.buyer("ana")
    reply = await (await buyer.slash_dm(bot, "status")).wait_reply(timeout=5)
    assert reply.ephemeral and "Latência do gateway" in reply.content
    log = (fleet.tmp / "logs" / "instances" / f"{iid}.log").read_text()
    assert f'"instance_id": {iid}' in log and bot.token not in log
