"""Which orchestrator node owns an instance: a Redis lease with a fencing token.

Several orchestrator nodes may share one database and one Redis (docs/decisions.md, "Several
orchestrator nodes").
An instance is run by the node that holds its lease `keys.lease(id)` = `"<node>:<token>"`,
a string with a TTL. The token comes from one counter (`keys.FENCING_COUNTER`) and grows with
every grant, so a later owner always carries a larger token than an earlier one.

* The node acquires the lease just before it forks a worker (a new token every time) and hands
  the value to the worker. It renews the leases of everything it holds (live workers, and
  instances waiting in backoff, whose timer is its own) every `ttl / 3` in one script call.
* The worker renews its own lease with every heartbeat, so its bot keeps running while its
  orchestrator is down or restarting (the restarted node adopts it), and it stops itself as
  soon as the lease names another holder (exit code `LEASE_LOST`): a fenced-off worker never
  keeps a second gateway session.
* A lease that nobody renews (the node's machine died: workers and orchestrator gone) expires
  after `ttl`; another live node then acquires it and starts the bot.
* A lease that has vanished (Redis restarted empty) is re-created by its holder on its next
  renewal, if nobody took it first.
* The database keeps each instance's highest token and refuses the writes of smaller ones;
  nodes acquire through `fleet.fencing.acquire`, which passes that mark as the counter's floor.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import redis.asyncio as aioredis

from core.tuning import tuning_float
from fleet import keys

if TYPE_CHECKING:
    from fleet.runtime import BeatWrite

DEFAULT_TTL_S = 30.0
TTL_ENV = "VITRINE_LEASE_TTL_S"


def lease_ttl(environ: Mapping[str, str]) -> float:
    """The lease TTL in seconds (VITRINE_LEASE_TTL_S, default 30); `TuningError` (a
    ValueError) names the variable when it is not a number of at least 1."""
    return tuning_float(TTL_ENV, DEFAULT_TTL_S, 1.0, 3600.0, environ)


# KEYS[1] lease, KEYS[2] fencing counter, KEYS[3] the node's lease set; ARGV[1] node,
# ARGV[2] ttl ms, ARGV[3] instance id, ARGV[4] floor (the database's high-water mark for the
# instance: a counter that restarted empty is raised above it, see fleet.fencing).
# -> {1, "node:token"} granted, or {0, current value} held by another node.
_ACQUIRE = """
local cur = redis.call('GET', KEYS[1])
if cur then
  local holder = string.match(cur, '^(.*):%d+$')
  if holder ~= ARGV[1] then return {0, cur} end
end
local token = redis.call('INCR', KEYS[2])
local floor = tonumber(ARGV[4] or '0') or 0
if token <= floor then
  token = string.format('%d', floor + 1)
  redis.call('SET', KEYS[2], token)
end
local value = ARGV[1] .. ':' .. token
redis.call('SET', KEYS[1], value, 'PX', ARGV[2])
redis.call('SADD', KEYS[3], ARGV[3])
return {1, value}
"""

# KEYS lease keys; ARGV[1] ttl ms, ARGV[2..] the value held for each key.
# Renews each lease still holding that value, re-creates a vanished one; -> 1-based indexes of
# the leases now held by someone else.
_RENEW = """
local lost = {}
for i, key in ipairs(KEYS) do
  local want = ARGV[i + 1]
  local cur = redis.call('GET', key)
  if cur == want then
    redis.call('PEXPIRE', key, ARGV[1])
  elseif not cur then
    redis.call('SET', key, want, 'PX', ARGV[1])
  else
    table.insert(lost, i)
  end
end
return lost
"""

# A worker's beat in one round trip: KEYS[1] its lease, KEYS[2] its heartbeat key, KEYS[3] its
# runtime record; ARGV[1] ttl ms, ARGV[2] the lease value it holds, ARGV[3] heartbeat value,
# ARGV[4] heartbeat ttl s, then field/value pairs for the record. Renews the lease as _RENEW
# does and writes the heartbeat only while the lease is still this holder's (a fenced-off
# worker's beat must not make its instance look alive to the new owner). 1: renewed, 0: lost.
_RENEW_AND_BEAT = """
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[2] then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
elseif not cur then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[1])
else
  return 0
end
redis.call('SET', KEYS[2], ARGV[3], 'EX', ARGV[4])
if #ARGV > 4 then
  redis.call('HSET', KEYS[3], unpack(ARGV, 5))
end
return 1
"""

# KEYS[1] lease; ARGV[1] value. Deletes the lease only if it still holds that value.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class Lease:
    node: str
    token: int

    @property
    def value(self) -> str:
        return f"{self.node}:{self.token}"

    @classmethod
    def parse(cls, raw: str | None) -> Lease | None:
        if not raw or ":" not in raw:
            return None
        node, _, token = raw.rpartition(":")
        return cls(node, int(token)) if token.isdigit() else None


def preferred_node(instance_id: int, nodes: Iterable[str]) -> str | None:
    """Rendezvous hashing: the live node that should take an unowned instance. Every node
    computes the same answer, and a node joining or leaving moves only its share."""

    def weight(node: str) -> bytes:
        return hashlib.blake2b(f"{node}\0{instance_id}".encode(), digest_size=8).digest()

    best = max(nodes, key=weight, default=None)
    return best


class LeaseBook:
    """The lease operations; `ttl` in seconds."""

    def __init__(self, redis: aioredis.Redis, node: str, ttl: float = DEFAULT_TTL_S) -> None:
        self.redis = redis
        self.node = node
        self.ttl_ms = max(1, int(ttl * 1000))

    async def acquire(self, instance_id: int, floor: int = 0) -> tuple[Lease | None, Lease | None]:
        """(granted lease, None), or (None, the other node's lease). A granted token is
        larger than `floor` (`fleet.fencing.acquire` passes the database's mark)."""
        ok, value = await self.redis.eval(
            _ACQUIRE,
            3,
            keys.lease(instance_id),
            keys.FENCING_COUNTER,
            keys.node_leases(self.node),
            self.node,
            self.ttl_ms,
            instance_id,
            floor,
        )
        lease = Lease.parse(value)
        return (lease, None) if int(ok) == 1 else (None, lease)

    async def renew(self, held: dict[int, str]) -> set[int]:
        """Renew every lease in `held` ({instance id: value}); returns the ids lost to
        another holder (re-creating the vanished ones)."""
        if not held:
            return set()
        ids = list(held)
        lost = await self.redis.eval(
            _RENEW, len(ids), *[keys.lease(i) for i in ids], self.ttl_ms, *[held[i] for i in ids]
        )
        gone = {ids[int(i) - 1] for i in lost or []}
        if gone:
            await self.redis.srem(keys.node_leases(self.node), *gone)
        return gone

    async def renew_and_beat(self, instance_id: int, value: str, beat: BeatWrite) -> bool:
        """A worker's beat: renew its lease `value` and, if it is still its own, write the
        heartbeat `beat`, in one round trip (an idle worker's CPU is mostly its Redis round
        trips: issue 14). False: the lease is another's and nothing was written."""
        pairs = [str(x) for kv in beat.fields.items() for x in kv]
        renewed = await self.redis.eval(
            _RENEW_AND_BEAT,
            3,
            keys.lease(instance_id),
            beat.hb_key,
            beat.rt_key,
            self.ttl_ms,
            value,
            beat.hb_value,
            beat.hb_ttl,
            *pairs,
        )
        if not int(renewed):
            await self.redis.srem(keys.node_leases(self.node), instance_id)
        return bool(int(renewed))

    async def release(self, instance_id: int, value: str) -> bool:
        pipe = self.redis.pipeline(transaction=False)
        pipe.eval(_RELEASE, 1, keys.lease(instance_id), value)
        pipe.srem(keys.node_leases(self.node), instance_id)
        released, _ = await pipe.execute()
        return bool(released)

    async def orphans(self, live: set[str]) -> set[int]:
        """Instances that nodes no longer alive took and whose leases have lapsed: theirs to
        take over for the live nodes. Work grows with the dead nodes' instances only; a dead
        node with nothing left is forgotten."""
        found: set[int] = set()
        # the client decodes responses to str (core.redis.connect: decode_responses=True)
        for node in cast(set[str], await self.redis.smembers(keys.ORCHESTRATOR_NODES)):
            if node in live:
                continue
            ids = [int(i) for i in await self.redis.smembers(keys.node_leases(node))]
            current = await self.holders(ids)
            moved = [i for i, lease in current.items() if lease is not None and lease.node != node]
            if moved:
                await self.redis.srem(keys.node_leases(node), *moved)
            found |= {i for i, lease in current.items() if lease is None}
            if not ids:
                await self.redis.srem(keys.ORCHESTRATOR_NODES, node)
        return found

    async def holders(self, instance_ids: Iterable[int]) -> dict[int, Lease | None]:
        ids = list(instance_ids)
        if not ids:
            return {}
        # the client decodes responses to str (core.redis.connect: decode_responses=True)
        values = cast(list[str | None], await self.redis.mget([keys.lease(i) for i in ids]))
        return {i: Lease.parse(v) for i, v in zip(ids, values, strict=True)}


async def live_nodes(redis: aioredis.Redis) -> set[str]:
    """Orchestrator nodes whose heartbeat has not expired."""
    # the client decodes responses to str (core.redis.connect: decode_responses=True)
    nodes = sorted(cast(set[str], await redis.smembers(keys.ORCHESTRATOR_NODES)))
    if not nodes:
        return set()
    beats = await redis.mget([keys.orchestrator_heartbeat(n) for n in nodes])
    return {n for n, b in zip(nodes, beats, strict=True) if b}
