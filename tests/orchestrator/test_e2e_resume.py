"""End to end (issue 14): a crashed bot comes back by RESUME, with no new login and no lost
event; a stale stored session costs exactly one IDENTIFY; a refused RESUME ends in READY and
the bot keeps beating (it is not killed as stuck). Run on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from fleet import keys
from fleet.states import InstanceState
from ops.fleet_harness import alive
from tests.worker.resume_ext import joins_key

pytestmark = pytest.mark.e2e
S = InstanceState


async def _logins_today(fleet, iid: int) -> int:
    """The crash policy's daily budget: logins (IDENTIFYs) the workers counted today."""
    day = time.strftime("%Y%m%d", time.gmtime())
    return int(await fleet.redis.get(keys.restart_budget(iid, day)) or 0)


@pytest.fixture
async def fleet(tmp_path, db, redis_url, sandbox):
    """The harness's orchestrator on this test's database (SQLite or PostgreSQL), with a test
    extension that records member joins."""
    from ops.fleet_harness import Fleet

    env = {"VITRINE_WORKER_EXTENSIONS": "tests.worker.resume_ext"}
    f = Fleet(tmp_path, db, redis_url, sandbox.discord_api_base, extra_env=env)
    try:
        yield f
    finally:
        await f.cleanup()


async def _online_store(fleet, dc):
    """A bot with the members intent in its store's guild, online, /status registered."""
    from fleet.models import BotInstance
    from shop.models import Account, Tenant

    bot = await dc.create_bot("Loja", privileged_intents=["members"])
    guild = await dc.create_guild("Servidor", channels=["loja"], bots=[bot])
    owner = await Account.create(discord_id=uuid.uuid4().hex[:18], username="seller")
    tenant = await Tenant.create(owner=owner, name="Loja", guild_id=guild.id)
    inst = await BotInstance.create(
        tenant=tenant, name="Loja", token_enc=fleet.vault.encrypt(bot.token)
    )
    fleet.start()
    rec = await fleet.wait_state(inst.id, S.ONLINE, timeout=20)
    await dc.wait_commands(bot, ["status"])

    async def session_stored():
        return await fleet.redis.hgetall(keys.gateway_session(inst.id))

    await fleet.wait_for("stored session", session_stored, timeout=5)
    return bot, guild, inst.id, rec


async def test_sigkilled_worker_resumes_and_answers_what_came_while_down(fleet, dc):
    bot, guild, iid, rec = await _online_store(fleet, dc)
    buyers = [await dc.buyer(f"ana{n}", guilds=[guild]) for n in range(5)]
    before = await dc.bot_info(bot)
    # RESUME is held 1.5 s by the sandbox: everything below happens while no process serves
    await dc.set_faults(bot, resume_delay_ms=1500)
    os.kill(rec.pid, signal.SIGKILL)
    sent = [await b.slash(bot, guild, "loja", "status") for b in buyers]
    joiner = await dc.create_user("novo")
    await dc.add_member(guild, joiner["id"])

    back = await fleet.wait_state(iid, S.ONLINE, new_pid_than=rec.pid, timeout=10)
    for inter in sent:
        reply = await inter.wait_reply(timeout=5)
        assert reply is not None
    await asyncio.sleep(1.0)  # room for a second answer, if there were one
    for inter in sent:
        record = await inter.record()
        assert record["acknowledged"] and record["error"] is None
        assert record["followups"] == []
    info = await dc.bot_info(bot)
    assert info["identify_count"] == before["identify_count"], "a RESUME spends no login"
    assert info["resume_count"] == before["resume_count"] + 1
    assert info["replayed_events"] >= 6
    assert await fleet.redis.sismember(joins_key(iid), joiner["id"])  # replayed, handled
    assert back.crashes[0]["code"] == "signal:9"  # the orchestrator recorded the crash
    assert await _logins_today(fleet, iid) == 1  # the first start's login only

    async def came_back_by_resume():
        r = await fleet.record(iid)
        return r if r and r.connected_by == "resume" else None

    await fleet.wait_for("connected_by=resume", came_back_by_resume, timeout=5)


async def test_stale_stored_session_costs_exactly_one_identify(fleet, dc):
    bot, guild, iid, rec = await _online_store(fleet, dc)
    await dc.configure(session_resume_window_s=0)  # Discord forgot the session at once
    before = await dc.bot_info(bot)
    os.kill(rec.pid, signal.SIGKILL)
    await fleet.wait_state(iid, S.ONLINE, new_pid_than=rec.pid, timeout=10)

    async def logged_in():
        r = await fleet.record(iid)
        return r if r and r.connected_by == "identify" and r.pid != rec.pid else None

    await fleet.wait_for("connected_by=identify", logged_in, timeout=5)
    info = await dc.bot_info(bot)
    assert info["identify_count"] == before["identify_count"] + 1
    assert info["invalid_sessions"] == before["invalid_sessions"] + 1
    assert await _logins_today(fleet, iid) == 2  # the budget counts the new login
    buyer = await dc.buyer("ana", guilds=[guild])
    assert await (await buyer.slash(bot, guild, "loja", "status")).wait_reply() is not None


@pytest.mark.parametrize("refusal", [9, 4009])
async def test_refused_resume_ends_in_ready_and_the_worker_keeps_beating(fleet, dc, refusal):
    bot, guild, iid, rec = await _online_store(fleet, dc)
    await dc.set_faults(bot, refuse_resume=refusal)
    await dc.disconnect(bot, 4000)  # resumable: disnake tries RESUME, which is refused
    await dc.wait_bot(bot, lambda i: i["identify_count"] == 2, timeout=10)
    # stuck_after is 3 s (FAST_POLICY): a worker that stopped beating would be replaced by now
    await asyncio.sleep(5)
    now = await fleet.record(iid)
    assert now.state == S.ONLINE and now.pid == rec.pid
    assert now.heartbeat_age is not None and now.heartbeat_age < 2
    assert not now.crashes
    buyer = await dc.buyer("ana", guilds=[guild])
    assert await (await buyer.slash(bot, guild, "loja", "status")).wait_reply() is not None


async def test_drained_node_hands_its_bots_over_by_resume(fleet, dc):
    """`stop-all` (and a handover) stops workers with SIGUSR2: they leave their sessions
    resumable, so the next orchestrator's workers come back with no new login."""
    bot, guild, iid, rec = await _online_store(fleet, dc)
    before = await dc.bot_info(bot)

    def stop_all() -> None:
        out = subprocess.run(
            [sys.executable, "-m", "orchestrator", "stop-all", "--timeout", "5"],
            env=fleet.env,
            cwd=fleet.tmp,
            capture_output=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr

    await asyncio.to_thread(stop_all)
    assert not alive(rec.pid) and (await fleet.record(iid)).state == S.STOPPED
    assert await fleet.redis.exists(keys.gateway_session(iid))  # kept for the successor
    await fleet.stop(signal.SIGKILL)
    fleet.start()
    await fleet.wait_state(iid, S.ONLINE, new_pid_than=rec.pid, timeout=20)

    async def resumed():
        r = await fleet.record(iid)
        return r if r and r.connected_by == "resume" and r.pid != rec.pid else None

    await fleet.wait_for("connected_by=resume", resumed, timeout=5)
    info = await dc.bot_info(bot)
    assert info["identify_count"] == before["identify_count"]
    assert info["resume_count"] == before["resume_count"] + 1
