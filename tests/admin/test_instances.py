"""Instances: list/filter/search, detail with runtime facts, control actions through Redis."""

from __future__ import annotations

from fleet.control_protocol import ResultCode
from fleet.runtime import RuntimeStore
from fleet.states import InstanceState
from tests.helpers.admin import AUTH, make_instance, make_tenant


async def _online(redis, instance_id):
    store = RuntimeStore(redis)
    await store.transition(instance_id, InstanceState.STARTING, pid=123)
    await store.transition(instance_id, InstanceState.ONLINE)
    await store.beat(instance_id, latency_ms=42.0, guilds=3)


async def test_list_filters_by_runtime_state_tenant_and_search(client, redis):
    shop = await make_tenant(name="Loja do Zé")
    up = await make_instance(shop, bot_username="ZeBot")
    down = await make_instance(shop)
    other = await make_instance()
    await _online(redis, up.id)
    await RuntimeStore(redis).transition(down.id, InstanceState.ERROR)
    body = await (await client.get("/api/instances?state=online", headers=AUTH)).get_json()
    assert [i["id"] for i in body["items"]] == [up.id]
    assert body["items"][0]["runtime"]["guilds"] == 3
    assert "token_enc" not in body["items"][0]
    url = f"/api/instances?tenant_id={shop.id}"
    body = await (await client.get(url, headers=AUTH)).get_json()
    assert {i["id"] for i in body["items"]} == {up.id, down.id}
    response = await client.get("/api/instances", headers=AUTH, query_string={"q": "zé"})
    body = await response.get_json()
    assert {i["id"] for i in body["items"]} == {up.id, down.id}
    body = await (await client.get("/api/instances?state=stopped", headers=AUTH)).get_json()
    assert [i["id"] for i in body["items"]] == [other.id]
    body = await (await client.get("/api/instances?limit=1&offset=1", headers=AUTH)).get_json()
    assert body["page"] == {"total": 3, "limit": 1, "offset": 1} and len(body["items"]) == 1


async def test_detail_shows_last_errors_and_crash_history(client, redis):
    inst = await make_instance()
    store = RuntimeStore(redis)
    await store.transition(inst.id, InstanceState.ERROR)
    await store.set_last_error(inst.id, "Token inválido", "4004")
    await store.record_crash(inst.id, {"at": 1.0, "code": 1, "uptime_s": 0.5, "error": "boom"})
    body = await (await client.get(f"/api/instances/{inst.id}", headers=AUTH)).get_json()
    assert body["state"] == "error"
    assert body["last_error"]["message"] == "Token inválido"
    assert body["errors"][0]["code"] == "4004"
    assert body["crashes"][0]["error"] == "boom"
    assert (await client.get("/api/instances/424242", headers=AUTH)).status_code == 404


async def test_restart_returns_the_orchestrators_answer_and_is_audited(client, orchestrator):
    from core.models import AuditLog

    inst = await make_instance()
    response = await client.post(f"/api/instances/{inst.id}/restart", headers=AUTH)
    body = await response.get_json()
    assert response.status_code == 200, body
    assert body["ok"] and body["code"] == "ok" and body["state"] == "online"
    assert orchestrator.received[0].action == "restart"
    assert orchestrator.received[0].actor.startswith("admin:token:")
    entry = await AuditLog.get(action="instance.restart")
    assert entry.target_id == str(inst.id) and entry.after["outcome"] == "ok"


async def test_suspend_needs_a_reason_and_passes_it_on(client, orchestrator):
    inst = await make_instance()
    response = await client.post(f"/api/instances/{inst.id}/suspend", headers=AUTH, json={})
    assert response.status_code == 400
    assert (await response.get_json())["fields"][0]["field"] == "reason"
    response = await client.post(
        f"/api/instances/{inst.id}/suspend", headers=AUTH, json={"reason": "spam"}
    )
    assert response.status_code == 200
    assert orchestrator.received[-1].reason == "spam"


async def test_a_refusal_maps_to_409(client, orchestrator):
    inst = await make_instance()
    orchestrator.answers["resume"] = (False, ResultCode.BLOCKED, "stopped")
    response = await client.post(f"/api/instances/{inst.id}/resume", headers=AUTH)
    assert response.status_code == 409
    assert (await response.get_json())["code"] == "blocked"


async def test_no_orchestrator_is_a_504_with_a_clear_message(client):
    from core.models import AuditLog

    inst = await make_instance()
    response = await client.post(f"/api/instances/{inst.id}/stop", headers=AUTH)
    body = await response.get_json()
    assert response.status_code == 504
    assert body["error"] == "orchestrator_timeout" and "no orchestrator answered" in body["message"]
    assert (await AuditLog.get(action="instance.stop")).after["outcome"] == "timeout"
