"""How bots came back (issue 14): `/api/status` counts online bots by how their session
began, `/api/instances` carries it in the runtime facts, `vitrine instances` shows it."""

from __future__ import annotations

from fleet.runtime import RuntimeStore
from fleet.states import InstanceState
from ops.opscmds import _came_back, format_status
from tests.helpers.admin import AUTH, make_instance, make_tenant


async def _online(redis, instance_id: int, connected_by: str) -> None:
    store = RuntimeStore(redis)
    await store.transition(instance_id, InstanceState.STARTING, pid=123)
    await store.transition(instance_id, InstanceState.ONLINE)
    await store.update(instance_id, connected_by=connected_by, connected_at="1700000000.0")


async def test_status_and_instances_say_resumed_or_logged_in(client, redis):
    shop = await make_tenant(name="Loja")
    resumed, logged_in, down = [await make_instance(shop) for _ in range(3)]
    await _online(redis, resumed.id, "resume")
    await _online(redis, logged_in.id, "identify")
    await RuntimeStore(redis).transition(down.id, InstanceState.ERROR)
    status = await (await client.get("/api/status", headers=AUTH)).get_json()
    assert status["gateway"] == {"resume": 1, "identify": 1}
    assert "gateway:      identify 1, resume 1" in format_status(status)  # vitrine status
    body = await (await client.get("/api/instances", headers=AUTH)).get_json()
    by_id = {i["id"]: i for i in body["items"]}
    assert by_id[resumed.id]["runtime"]["connected_by"] == "resume"
    assert [_came_back(by_id[i.id]) for i in (resumed, logged_in, down)] == [
        "resumed",
        "logged in",
        "",
    ]
