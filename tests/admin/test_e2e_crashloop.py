"""End to end with the real orchestrator: a sandbox bot made to crash-loop shows up in
/api/status, in the work queue and in the alerts; `suspend` stops it, `resume` brings it back."""

from __future__ import annotations

import os
import signal

import pytest

from fleet.states import InstanceState
from ops.fleet_harness import alive
from tests.helpers.admin import AUTH, admin_settings
from web.admin import create_app

pytestmark = pytest.mark.e2e
S = InstanceState


async def test_crashloop_is_seen_then_suspended_then_resumed(
    tmp_path, fleet, dc, sqlite_db, redis_url
):
    # a short clock: 2nd crash waits 5 s, the 3rd in the window is a crash loop (10 s wait)
    fleet.env.update(
        VITRINE_POLICY_BASE_DELAY="5",
        VITRINE_POLICY_MAX_DELAY="30",
        VITRINE_POLICY_CRASHLOOP_COUNT="3",
        VITRINE_POLICY_SUSPEND_AFTER="50",
    )
    bot = await dc.create_bot("Loja Instável")
    iid = await fleet.add_instance(bot.token, name="Loja Instável")
    fleet.start()
    rec = await fleet.wait_state(iid, S.ONLINE, timeout=20)
    for _ in range(2):
        os.kill(rec.pid, signal.SIGKILL)
        rec = await fleet.wait_state(iid, S.ONLINE, new_pid_than=rec.pid, timeout=15)
    os.kill(rec.pid, signal.SIGKILL)
    await fleet.wait_state(iid, S.CRASHLOOP, timeout=10)

    app = create_app(admin_settings(tmp_path, sqlite_db, redis_url))
    async with app.test_app():
        client = app.test_client()
        status = await (await client.get("/api/status", headers=AUTH)).get_json()
        assert status["instances"]["crashloop"] == 1
        assert status["services"]["orchestrator"]["ok"]
        node = status["services"]["orchestrator"]["node_status"][fleet.node]
        # the crash-looping bot's lease stays with this node while it waits for its restart
        # (the figures are those of the node's last heartbeat: running or waiting)
        assert node["workers"] in (0, 1) and node["leases"] == 1 and node["drained"] is False
        assert node["heartbeat_age_s"] < 15 and node["pid"] == fleet.proc.pid
        assert status["services"]["orchestrator"]["down_nodes"] == []
        queue = await (
            await client.get("/api/monitor/requests?type=alert", headers=AUTH)
        ).get_json()
        assert [i["detail"]["instance_id"] for i in queue["items"]] == [iid]
        alerts = await (await client.get(f"/api/alerts?instance_id={iid}", headers=AUTH)).get_json()
        assert [a["kind"] for a in alerts["items"]] == ["crashloop"]
        detail = await (await client.get(f"/api/instances/{iid}", headers=AUTH)).get_json()
        assert len(detail["crashes"]) == 3 and detail["crashes"][0]["code"] == "signal:9"

        response = await client.post(
            f"/api/instances/{iid}/suspend",
            headers=AUTH,
            json={"reason": "crash loop: investigando"},
        )
        body = await response.get_json()
        assert response.status_code == 200, body
        assert body["state"] == "suspended"
        assert (await fleet.record(iid)).state == S.SUSPENDED
        assert not alive(rec.pid)

        response = await client.post(f"/api/instances/{iid}/resume", headers=AUTH)
        assert response.status_code == 200, await response.get_json()
        back = await fleet.wait_state(iid, S.ONLINE, timeout=15)
        assert back.pid != rec.pid
        listed = await (await client.get("/api/instances?state=online", headers=AUTH)).get_json()
        assert [i["id"] for i in listed["items"]] == [iid]
