"""Placement and leases: which instances this node may act on, and the leases it holds.

A node starts an instance only after taking its lease (`fleet.leases`), leaves alone the
instances whose lease another node holds, starts an unowned instance when it is the instance's
rendezvous node (or the preferred node left it unowned for `grace` s), and keeps the leases of
what it runs or waits to restart until it lets them go.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

import redis.asyncio as aioredis

from fleet import fencing
from fleet.leases import DEFAULT_TTL_S, Lease, LeaseBook, live_nodes, preferred_node
from fleet.runtime import RuntimeRecord
from orchestrator.desired_state import Step
from orchestrator.worker_table import Worker, WorkerTable

log = logging.getLogger("orchestrator")
UNKNOWN = object()  # "not looked up yet" (None means "looked up: nobody holds it")


class Placement:
    """This node's leases (`held`) and its placement decisions. `look_again(iid, at)` is
    called when an instance should be reconsidered at `at` (its placement grace ends)."""

    def __init__(
        self,
        redis: aioredis.Redis,
        node: str,
        look_again: Callable[[int, float], None],
        *,
        ttl: float = DEFAULT_TTL_S,
        grace: float = 5.0,
    ) -> None:
        self.redis = redis
        self.node = node
        self.book = LeaseBook(redis, node, ttl)
        self.held: dict[int, str] = {}  # instance id -> lease value this node holds
        self.nodes: set[str] = {node}  # live orchestrator nodes, see live_nodes()
        self._nodes_at = -1e9
        self.grace = grace
        self.unowned_since: dict[int, float] = {}
        self._look_again = look_again

    async def holders(self, ids: Iterable[int]) -> dict[int, Lease | None]:
        return await self.book.holders(ids)

    async def gate(self, iid: int, step: Step, holder: Lease | None | object = UNKNOWN) -> Step:
        """For an instance this node neither runs nor holds: act only if no other node holds
        its lease, and start it only if this node is where it belongs (or nobody took it)."""
        lease = (
            holder
            if isinstance(holder, Lease) or holder is None
            else (await self.book.holders([iid]))[iid]
        )
        if lease is not None and lease.node != self.node:
            return Step.NONE  # another node's bot: its orchestrator acts on it
        if lease is not None:  # ours from before a restart (a backoff timer): keep it
            self.held[iid] = lease.value
            return step
        if step == Step.START and not self._may_place(iid, await self.live_nodes()):
            return Step.NONE
        return step

    async def live_nodes(self, max_age: float = 0.25) -> set[str]:
        """The live orchestrator nodes, looked up at most once per `max_age` s."""
        now = time.monotonic()
        if now - self._nodes_at > max_age:
            self.nodes = await live_nodes(self.redis) | {self.node}
            self._nodes_at = now
        return self.nodes

    def _may_place(self, iid: int, nodes: set[str]) -> bool:
        """Rendezvous placement over the live nodes; any node takes an instance that its
        preferred node left unowned for `grace` s (that node may be stuck)."""
        if preferred_node(iid, nodes) in (None, self.node):
            self.unowned_since.pop(iid, None)
            return True
        now = time.time()
        first = self.unowned_since.setdefault(iid, now)
        if now - first >= self.grace:
            del self.unowned_since[iid]
            return True
        self._look_again(iid, first + self.grace)
        return False

    async def elsewhere(self, iid: int) -> str | None:
        """The live node, other than this one, that holds the instance's lease (it runs the
        bot and answers its control commands); None when that is not the case."""
        if iid in self.held:
            return None
        lease = (await self.book.holders([iid]))[iid]
        if lease is not None and lease.node != self.node and lease.node in await self.live_nodes():
            return lease.node
        return None

    async def acquire(self, iid: int) -> tuple[Lease | None, Lease | None]:
        """Take the lease (granted, None) or learn who holds it (None, holder). The token is
        claimed in the database first (`fleet.fencing`): the previous owner's writes are
        refused from now on, and a Redis that restarted empty cannot hand out an old token."""
        lease, other = await fencing.acquire(self.book, iid)
        if lease is None:
            self.held.pop(iid, None)
        else:
            self.held[iid] = lease.value
        return lease, other

    async def claim_adopted(
        self,
        records: dict[int, RuntimeRecord],
        workers: WorkerTable,
        fence: Callable[[Worker], None],
    ) -> None:
        """Hold the leases of the workers adopted after a restart: the value each was started
        with, if nobody else holds the lease meanwhile (else `fence` stops the worker)."""
        ids = [i for i in records if i in workers]
        current = await self.book.holders(ids)
        for iid in ids:
            rec, lease, worker = records[iid], current[iid], workers[iid]
            if lease is not None and lease.node != self.node:
                log.warning(
                    "instance %s: adopted worker %s is fenced off by node %s",
                    iid,
                    worker.pid,
                    lease.node,
                    extra={"instance_id": iid},
                )
                fence(worker)
                continue
            value = lease.value if lease is not None else rec.lease
            if value is None:  # a worker started before leases existed
                granted, _ = await self.book.acquire(iid)
                value = granted.value if granted else None
            if value is not None:
                self.held[iid] = value
                worker.lease = value

    async def release(self, iid: int) -> None:
        """Let go of the instance's lease (it rests; any node may start it when wanted)."""
        value = self.held.pop(iid, None)
        if value is not None:
            await self.book.release(iid, value)

    def forget(self, iid: int, value: str | None) -> None:
        """Stop counting `value` as held (a fenced-off worker: the lease is another's now)."""
        if value is not None and self.held.get(iid) == value:
            del self.held[iid]

    async def renew(self) -> list[int]:
        """Renew every lease this node holds; returns the instances another node took (no
        longer held)."""
        held = dict(self.held)
        lost = []
        for iid in await self.book.renew(held):
            if self.held.get(iid) != held[iid]:
                continue  # re-acquired meanwhile
            del self.held[iid]
            lost.append(iid)
        return lost

    async def orphans(self) -> set[int]:
        """Instances of nodes that are down whose lease has lapsed."""
        return await self.book.orphans(await self.live_nodes(max_age=0))
