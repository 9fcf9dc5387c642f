"""Reconciler decisions (pure) and the desired-state reads (real database)."""

from __future__ import annotations

import uuid

import pytest

from fleet.models import BotInstance
from fleet.states import InstanceState
from orchestrator.desired_state import Actual, ChangeFeed, Desired, Step, Why, load_desired, plan
from shop.models.accounts import Account, Tenant

S = InstanceState
NOW = 1000.0


def want(run=True, why=None, version=1) -> Desired:
    return Desired(1, 1, run, why, version)


@pytest.mark.parametrize(
    "desired,actual,step",
    [
        (want(), Actual(False, None), Step.START),
        (want(), Actual(False, S.STOPPED), Step.START),
        (want(), Actual(True, S.ONLINE, 1), Step.NONE),
        (want(version=2), Actual(True, S.ONLINE, 1), Step.RESTART),
        (want(), Actual(False, S.ERROR, 1), Step.NONE),  # never restarted automatically ...
        (want(version=2), Actual(False, S.ERROR, 1), Step.START),  # ... until a new token is saved
        (want(), Actual(False, S.BACKOFF, 1, NOW + 5), Step.NONE),  # its timer starts it
        (want(), Actual(False, S.CRASHLOOP, 1, NOW - 1), Step.START),  # timer lost: start now
        (want(), Actual(False, S.SUSPENDED), Step.START),  # resumed
        (want(), Actual(False, S.ONLINE), Step.START),  # stale record: the process is gone
        (want(False, Why.SUSPENDED), Actual(True, S.ONLINE), Step.STOP),
        (want(False, Why.SUSPENDED), Actual(False, S.BACKOFF), Step.REST),
        (want(False, Why.SUSPENDED), Actual(False, S.SUSPENDED), Step.NONE),
        (want(False, Why.BLOCKED), Actual(True, S.STARTING), Step.STOP),
        (want(False, Why.STOPPED), Actual(False, S.ERROR), Step.NONE),
        (None, Actual(True, S.ONLINE), Step.STOP),
        (None, Actual(False, None), Step.NONE),
    ],
)
def test_plan(desired, actual, step):
    assert plan(desired, actual, NOW) == step


def test_drained_node_starts_nothing_and_stops_the_rest():
    assert plan(want(), Actual(False, S.STOPPED), NOW, drained=True) == Step.NONE
    assert plan(want(), Actual(True, S.ONLINE), NOW, drained=True) == Step.STOP


async def _instance(blocked=False, **fields) -> BotInstance:
    owner = await Account.create(discord_id=uuid.uuid4().hex[:18], username="a", blocked=blocked)
    tenant = await Tenant.create(owner=owner, name="t")
    return await BotInstance.create(tenant=tenant, token_enc="x", **fields)


async def test_desired_state_from_database(db):
    running = await _instance()
    suspended = await _instance(suspended=True, suspension_reason="fraude")
    blocked = await _instance(blocked=True)
    stopped = await _instance(desired_state="stopped")
    got = await load_desired()
    assert got[running.id].run
    assert (
        got[suspended.id].why_not == Why.SUSPENDED and got[suspended.id].rest_state == S.SUSPENDED
    )
    assert got[blocked.id].why_not == Why.BLOCKED
    assert got[stopped.id].why_not == Why.STOPPED
    assert set(await load_desired([running.id])) == {running.id}


async def test_change_feed_sees_edits_and_blocked_owners_not_everything(db, redis_url):
    from core.redis import connect
    from fleet.control_protocol import mark_dirty

    quiet = await _instance()
    edited = await _instance()
    feed = ChangeFeed()
    feed.watermark = None
    await feed.prime()
    feed.watermark = feed.watermark.replace(year=feed.watermark.year + 1)  # nothing is "new"
    assert await feed.changed() == set()
    feed.watermark = feed.watermark.replace(year=feed.watermark.year + 1)
    await Account.filter(id=(await edited.tenant).owner_id).update(blocked=True)
    assert await feed.changed() == {edited.id}
    redis = connect(redis_url)
    await mark_dirty(redis, quiet.id)
    assert await feed.dirty(redis) == {quiet.id}
    assert await feed.dirty(redis) == set()
    await redis.aclose()
