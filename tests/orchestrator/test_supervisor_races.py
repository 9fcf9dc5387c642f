"""Supervisor races that the end-to-end tests only hit under load, made deterministic."""

from __future__ import annotations

import pytest

from fleet.crashpolicy import PolicyConfig
from fleet.runtime import RuntimeRecord, RuntimeStore
from fleet.states import InstanceState as S
from orchestrator.desired_state import Desired
from orchestrator.supervisor import Supervisor


class NoSpawn:
    """A spawner that must not be asked for anything."""

    async def spawn(self, instance_id: int, lease: str | None = None, start: object = None) -> int:
        raise AssertionError(f"instance {instance_id} was started")


@pytest.fixture
def redis(redis_client):
    return redis_client


async def test_a_batch_record_read_before_an_exit_was_handled_is_read_again(redis):
    """A full pass reads every record, then waits for each instance's lock. If the worker's
    exit (here: a configuration error) is handled in between, the pass must not act on the
    older `starting` record: that started the bot again and cost a second login."""
    iid = 7
    sup = Supervisor(redis, NoSpawn(), PolicyConfig(), "node-a")  # type: ignore[arg-type]
    sup.desired[iid] = Desired(iid, tenant_id=1, run=True, why_not=None, config_version=1)
    store = RuntimeStore(redis)
    await store.transition(iid, S.STARTING, pid=123, config_version=1)
    epoch = sup.locks[iid].epoch
    stale = await store.get(iid)
    assert stale is not None and stale.state == S.STARTING
    async with sup.locks[iid]:  # the exit is handled meanwhile: the bot rests in `error`
        await store.transition(iid, S.ERROR, pid=None)
    await sup.reconcile_one(iid, stale, epoch=epoch)  # NoSpawn raises if it starts the bot
    assert (await store.get(iid)).state == S.ERROR


async def test_a_batch_record_still_current_is_used_as_read(redis):
    iid = 8
    sup = Supervisor(redis, NoSpawn(), PolicyConfig(), "node-a")  # type: ignore[arg-type]
    sup.desired[iid] = Desired(iid, tenant_id=1, run=True, why_not=None, config_version=1)
    fake = RuntimeRecord(iid, S.ERROR, config_version=1)  # not in Redis at all
    await sup.reconcile_one(iid, fake, epoch=sup.locks[iid].epoch)  # error, same config: rest
    assert await RuntimeStore(redis).get(iid) is None  # nothing re-read, nothing written
