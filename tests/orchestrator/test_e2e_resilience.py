"""End to end: the orchestrator survives itself, Redis restarts and a locked database;
`stop-all` stops the fleet."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

import pytest

from fleet.control_protocol import send_command
from fleet.models import BotInstance
from fleet.states import InstanceState
from ops.fleet_harness import Fleet, alive, node_processes
from ops.process_tools import free_port, wait_port
from shop.models.accounts import Account

pytestmark = pytest.mark.e2e
S = InstanceState


async def _online_fleet(fleet, dc, count: int):
    bots = [await dc.create_bot(f"Loja {n}") for n in range(count)]
    ids = [await fleet.add_instance(b.token, name=f"Loja {n}") for n, b in enumerate(bots)]
    fleet.start()
    recs = [await fleet.wait_state(i, S.ONLINE, timeout=20) for i in ids]
    return bots, ids, recs


async def test_orchestrator_sigkill_keeps_gateways_open_and_new_one_adopts_within_5s(fleet, dc):
    bots, ids, recs = await _online_fleet(fleet, dc, 3)
    identifies = [(await dc.bot_info(b))["identify_count"] for b in bots]
    await fleet.stop(signal.SIGKILL)
    await asyncio.sleep(1.0)
    for bot, rec in zip(bots, recs, strict=True):
        assert alive(rec.pid)
        assert (await dc.bot_info(bot))["open_connections"] == 1
    started = time.monotonic()
    fleet.start()

    async def adopted():
        status = await fleet.orchestrator_status()
        records = [await fleet.record(i) for i in ids]
        ok = status.get("adopted") == "3" and all(
            r.state == S.ONLINE and r.pid == old.pid for r, old in zip(records, recs, strict=True)
        )
        return ok

    await fleet.wait_for("adoption", adopted, timeout=5)
    assert time.monotonic() - started < 5
    # the adopted workers are watched: a crash is seen and handled
    os.kill(recs[0].pid, signal.SIGKILL)
    await fleet.wait_state(ids[0], S.ONLINE, new_pid_than=recs[0].pid, timeout=5)
    for bot, before in zip(bots[1:], identifies[1:], strict=True):
        info = await dc.bot_info(bot)
        assert info["identify_count"] == before and info["open_connections"] == 1


async def test_backoff_timer_survives_orchestrator_restart(fleet, dc):
    fleet.env["VITRINE_POLICY_BASE_DELAY"] = "4"
    _, (iid,), (rec,) = await _online_fleet(fleet, dc, 1)
    os.kill(rec.pid, signal.SIGKILL)  # 1st crash: at once
    rec = await fleet.wait_state(iid, S.ONLINE, new_pid_than=rec.pid, timeout=5)
    os.kill(rec.pid, signal.SIGKILL)  # 2nd crash: backoff 4 s
    waiting = await fleet.wait_state(iid, S.BACKOFF, timeout=5)
    await fleet.stop(signal.SIGKILL)
    fleet.start()
    back = await fleet.wait_state(iid, S.ONLINE, timeout=15)
    spawned_at = float(await fleet.redis.hget(f"vitrine:inst:{iid}:rt", "spawned_at"))
    assert spawned_at >= waiting.next_start_at - 0.05
    assert back.crashes[0]["code"] == "signal:9"


async def test_stop_all_with_live_orchestrator_drains_and_without_stops_directly(fleet, dc):
    _, ids, recs = await _online_fleet(fleet, dc, 2)

    def stop_all() -> str:
        out = subprocess.run(
            [sys.executable, "-m", "orchestrator", "stop-all", "--timeout", "5"],
            env=fleet.env,
            cwd=fleet.tmp,
            capture_output=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        return out.stdout.decode()

    out = await asyncio.to_thread(stop_all)
    assert "stopped 2 worker(s); node drained" in out
    for iid, rec in zip(ids, recs, strict=True):
        assert not alive(rec.pid)
        assert (await fleet.record(iid)).state == S.STOPPED

    async def drained():
        return (await fleet.orchestrator_status()).get("drained") == "1"

    await fleet.wait_for("drained status", drained, timeout=8)
    # a new orchestrator starts them again (desired state is unchanged); kill it, stop directly
    await fleet.stop(signal.SIGKILL)
    fleet.start()
    recs = [await fleet.wait_state(i, S.ONLINE, timeout=20) for i in ids]
    await fleet.stop(signal.SIGKILL)
    await fleet.redis.delete(f"vitrine:orch:{fleet.node}:hb")  # as if 15 s had passed
    out = await asyncio.to_thread(stop_all)
    assert "stopped 2 worker(s) directly" in out
    assert not any(alive(r.pid) for r in recs)
    assert node_processes(fleet.node) == []


@pytest.fixture
def private_redis():
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="vitrine-redis-restart-")
    cmd = [
        shutil.which("redis-server"),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        workdir,
    ]
    procs = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    wait_port(port, timeout=10.0)

    def restart() -> None:
        procs[-1].terminate()
        procs[-1].wait(10)
        procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_port(port, timeout=10.0)

    yield f"redis://127.0.0.1:{port}/0", restart
    procs[-1].terminate()
    procs[-1].wait(10)
    shutil.rmtree(workdir, ignore_errors=True)


async def test_redis_restart_orchestrator_reconnects_and_keeps_managing(
    tmp_path, sqlite_db, sandbox, dc, private_redis
):
    url, restart = private_redis
    fleet = Fleet(tmp_path, sqlite_db, url, sandbox.discord_api_base)
    try:
        _, (iid,), (rec,) = await _online_fleet(fleet, dc, 1)
        await fleet.redis.aclose()
        await asyncio.to_thread(restart)  # every key is gone (no persistence)
        fleet.redis = fleet.redis.from_url(url, decode_responses=True)
        fleet.store.redis = fleet.redis
        repaired = await fleet.wait_state(iid, S.ONLINE, timeout=15)
        assert repaired.pid == rec.pid and alive(rec.pid)
        res = await send_command(fleet.redis, "restart", iid, actor="admin:ana", timeout=10)
        assert res.ok, res
        new = await fleet.wait_state(iid, S.ONLINE, new_pid_than=rec.pid, timeout=10)
        os.kill(new.pid, signal.SIGKILL)
        await fleet.wait_state(iid, S.ONLINE, new_pid_than=new.pid, timeout=5)
    finally:
        await fleet.cleanup()


async def test_database_locked_for_a_while_then_changes_still_apply(fleet, dc):
    _, (iid,), (rec,) = await _online_fleet(fleet, dc, 1)
    path = fleet.database_url[len("sqlite://") :]
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    try:
        os.kill(rec.pid, signal.SIGKILL)  # restarting needs Redis, not the database
        rec = await fleet.wait_state(iid, S.ONLINE, new_pid_than=rec.pid, timeout=10)
        await asyncio.sleep(2)  # several change passes wait on the lock meanwhile
    finally:
        conn.execute("ROLLBACK")
        conn.close()
    inst = await BotInstance.get(id=iid).prefetch_related("tenant")
    await Account.filter(id=inst.tenant.owner_id).update(blocked=True)
    await fleet.wait_state(iid, S.STOPPED, timeout=15)
    assert not alive(rec.pid)
