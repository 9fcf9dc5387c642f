"""The supervisor: spawns, watches, stops and restarts worker processes, one per instance.

Every operation on an instance holds that instance's lock, so a control command, a reconcile
pass, a backoff timer and an exit never interleave for the same bot.

The lifecycle and the locks live here; the rest is in collaborators the supervisor owns:
`orchestrator.placement` (leases: several nodes may share the database and Redis, and a node
starts an instance only after taking its lease), `orchestrator.exits` (exits and crash
decisions), `orchestrator.pacing` (start pacing), `orchestrator.health` (stuck workers),
`orchestrator.timers` and `orchestrator.worker_table`. Other modules call its public methods.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import defaultdict
from collections.abc import Coroutine
from typing import Any

import redis.asyncio as aioredis

from fleet import start_data
from fleet.crashpolicy import PolicyConfig
from fleet.leases import DEFAULT_TTL_S, Lease
from fleet.runtime import RuntimeRecord, RuntimeStore
from fleet.states import LIVE_STATES, InstanceState
from orchestrator.desired_state import Actual, Desired, Step, load_desired, plan
from orchestrator.exits import ExitHandler
from orchestrator.health import HealthCheck
from orchestrator.pacing import StartPacer
from orchestrator.placement import UNKNOWN, Placement
from orchestrator.timers import InstanceTimers
from orchestrator.worker_table import InstanceLock, Worker, WorkerTable
from orchestrator.zygote_client import Spawner, proc_start_time

log = logging.getLogger("orchestrator")
S = InstanceState


class Supervisor:
    def __init__(
        self,
        redis: aioredis.Redis,
        spawner: Spawner,
        policy: PolicyConfig,
        node: str,
        *,
        spawn_rate: float = 20.0,
        spawn_burst: int = 10,
        rng: random.Random | None = None,
        lease_ttl: float = DEFAULT_TTL_S,
        placement_grace: float = 5.0,
    ) -> None:
        self.redis = redis
        self.store = RuntimeStore(redis)
        self.spawner = spawner
        self.policy = policy
        self.node = node
        self.rng = rng or random.Random()
        self.pacer = StartPacer(redis, spawn_rate, spawn_burst, self.rng)
        self.workers = WorkerTable(lambda worker: self.spawn_task(self._exited(worker)))
        self.timers = InstanceTimers(lambda iid: self.spawn_task(self._timer_fired(iid)))
        self.locks: defaultdict[int, InstanceLock] = defaultdict(InstanceLock)
        self.desired: dict[int, Desired] = {}
        self.start_rows = start_data.PassRows()  # what a pass's starts hand their workers
        self.drained = False
        self.adopted = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.locale = "pt-BR"
        self.placement = Placement(redis, node, self.schedule, ttl=lease_ttl, grace=placement_grace)
        self.exits = ExitHandler(self)
        self.health = HealthCheck(redis, self.store, node, policy)

    # --- reconcile -----------------------------------------------------------------------
    async def reconcile(self, ids: set[int] | None = None) -> int:
        """Converge the given instances (all when None) with the database; returns a count."""
        desired = await load_desired(ids)
        if ids is None:
            ids = set(desired) | set(self.workers) | set(self.desired)
            self.desired = dict(desired)
        else:
            for iid in ids:
                self.desired.pop(iid, None)
            self.desired.update(desired)
        epochs = {i: self.locks[i].epoch for i in ids}
        await self.start_rows.read(i for i in ids if i not in self.workers and self._wanted(i))
        records = await self.store.get_many(ids)
        holders = await self.placement.holders(ids)
        await asyncio.gather(
            *(
                self.reconcile_one(i, records.get(i), holder=holders.get(i), epoch=epochs[i])
                for i in ids
            )
        )
        return len(ids)

    def _wanted(self, iid: int) -> bool:
        return (desired := self.desired.get(iid)) is not None and desired.run

    async def reconcile_one(
        self,
        iid: int,
        rec: RuntimeRecord | None = None,
        fetch: bool = False,
        holder: Lease | None | object = UNKNOWN,
        epoch: int | None = None,
    ) -> None:
        """Converge one instance. `rec`/`holder` read before the lock (a batch) are read again
        if anything ran under the instance's lock since `epoch` (e.g. an exit was handled:
        acting on the older record would start a bot that just ended in `error`)."""
        lock = self.locks[iid]
        async with lock:
            if fetch or (epoch is not None and lock.epoch != epoch):
                rec = await self.store.get(iid)
                holder = UNKNOWN
            desired = self.desired.get(iid)
            worker = self.workers.get(iid)
            actual = Actual(
                alive=worker is not None,
                state=rec.state if rec else None,
                config_version=(
                    worker.config_version if worker else rec.config_version if rec else None
                ),
                next_start_at=rec.next_start_at if rec else None,
            )
            step = plan(desired, actual, time.time(), self.drained)
            if step != Step.NONE and worker is None and iid not in self.placement.held:
                step = await self.placement.gate(iid, step, holder)
            if step != Step.NONE:
                log.info(
                    "instance %s: %s (state %s)",
                    iid,
                    step,
                    actual.state,
                    extra={"instance_id": iid},
                )
            await self._apply(iid, step, desired, actual)

    async def _apply(self, iid: int, step: Step, desired: Desired | None, actual: Actual) -> None:
        if step == Step.START:
            assert desired is not None
            self.cancel_timer(iid)
            await self.start_locked(iid, desired.config_version)
        elif step == Step.RESTART:
            assert desired is not None
            await self.stop_locked(iid, "restart")
            await self.start_locked(iid, desired.config_version)
        elif step in (Step.STOP, Step.REST):
            self.cancel_timer(iid)
            await self.stop_locked(iid, "stop")
            rest = desired.rest_state if desired else S.STOPPED
            await self.store.transition(iid, rest, pid=None, next_start_at=None)
            await self.placement.release(iid)
        elif actual.next_start_at and actual.state in (S.BACKOFF, S.CRASHLOOP):
            self.schedule(iid, actual.next_start_at)  # e.g. timers of a previous orchestrator

    # --- what control commands and the daemon use ------------------------------------------
    async def refresh_desired(self, iid: int) -> None:
        """Read the instance's desired state from the database again (after a change)."""
        desired = await load_desired([iid])
        self.start_rows.forget(iid)
        if iid in desired:
            self.desired[iid] = desired[iid]
        else:
            self.desired.pop(iid, None)

    async def restart(self, iid: int) -> None:
        """Stop the instance's worker and start it now, leaving error, backoff and crash-loop;
        an instance that should not run (or a drained node) is only converged."""
        await self._start_now(iid, stop_first=True)

    async def start(self, iid: int) -> None:
        """Start the instance now unless it runs, leaving error, backoff and crash-loop; an
        instance that should not run (or a drained node) is only converged."""
        await self._start_now(iid, stop_first=False)

    async def _start_now(self, iid: int, stop_first: bool) -> None:
        wanted = self.desired.get(iid)
        if not (wanted and wanted.run and not self.drained):
            await self.reconcile_one(iid, fetch=True)
            return
        async with self.locks[iid]:
            self.cancel_timer(iid)
            if stop_first:
                await self.stop_locked(iid, "restart")
            if iid not in self.workers:
                await self.start_locked(iid, wanted.config_version)

    async def state(self, iid: int) -> str | None:
        """The instance's state in its runtime record (None: no record)."""
        rec = await self.store.get(iid)
        return str(rec.state) if rec else None

    async def clear_crashes(self, iid: int) -> None:
        """Forget the instance's crash history (a human looked at it: a fresh streak)."""
        await self.store.clear_crashes(iid)

    async def owner_elsewhere(self, iid: int) -> str | None:
        """The live node, other than this one, that runs the instance (None: not the case)."""
        return await self.placement.elsewhere(iid)

    def figures(self) -> dict[str, int]:
        """The node's figures for its status record."""
        return {
            "managed": len(self.desired),
            "live": len(self.workers),
            "adopted": self.adopted,
            "leases": len(self.placement.held),
            "drained": int(self.drained),
        }

    # --- leases ----------------------------------------------------------------------------
    async def leases_round(self) -> None:
        """Renew this node's leases, then look for the bots of dead nodes to take over."""
        await self.renew_leases()
        if self.drained:
            return
        orphans = await self.placement.orphans()
        if orphans:
            log.info("%d instance(s) of stopped nodes without a lease: reconciling", len(orphans))
            await self.reconcile(orphans)

    async def renew_leases(self) -> None:
        """Renew every lease this node holds; let go of the instances another node took."""
        for iid in await self.placement.renew():
            log.warning(
                "instance %s: its lease is held by another node now; letting go",
                iid,
                extra={"instance_id": iid},
            )
            self.cancel_timer(iid)
            worker = self.workers.get(iid)
            if worker is not None:
                self.signal_stop(worker, "lease")

    # --- start / stop / adopt ----------------------------------------------------------------
    async def start_locked(self, iid: int, config_version: int | None) -> Worker | None:
        """Take the lease and fork a worker now (paced); the caller holds the instance lock.
        None: another node holds the lease."""
        lease, other = await self.placement.acquire(iid)
        if lease is None:
            log.info(
                "instance %s: not started, node %s holds it",
                iid,
                other.node if other else "?",
                extra={"instance_id": iid},
            )
            self.cancel_timer(iid)
            return None
        try:
            return await self._fork(iid, config_version, lease.value)
        except BaseException:
            await self.placement.release(iid)
            raise

    async def _fork(self, iid: int, config_version: int | None, lease: str) -> Worker:
        await self.pacer.admit(iid)
        start = await self.start_rows.take(iid, config_version)
        pid = await self.spawner.spawn(iid, lease, start)
        worker = Worker(iid, pid, proc_start_time(pid), time.time(), config_version, lease=lease)
        self.workers.add(worker)  # before any await that can fail: a live worker is watched
        await self.store.transition(
            iid,
            S.STARTING,
            pid=pid,
            pid_start=worker.start,
            node=self.node,
            config_version=config_version,
            spawned_at=f"{worker.spawned_at:.3f}",
            next_start_at=None,
            online_since=None,
            lease=lease,
        )
        log.info("instance %s: worker %s started", iid, pid, extra={"instance_id": iid})
        return worker

    async def adopt_all(self) -> None:
        """Take over the workers a previous orchestrator of this node left running, handle the
        ones that ended meanwhile, then converge everything."""
        self.desired = await load_desired()
        records = await self.store.get_many(self.desired)
        for iid, rec in records.items():
            if rec.node not in (None, self.node) or rec.pid is None or rec.state not in LIVE_STATES:
                continue
            if iid not in self.workers and not self.adopt(rec, spawned_at=time.time()):
                self.adopt_gone(rec)  # it ended while no orchestrator watched
        await self.claim_adopted(records)
        log.info("adopted %d live worker(s)", self.adopted)
        await self.reconcile()

    def adopt(self, rec: RuntimeRecord, spawned_at: float | None) -> bool:
        """Watch a live worker left by a previous orchestrator; False when it is gone."""
        if self.workers.adopt(rec, spawned_at) is None:
            return False
        self.adopted += 1
        return True

    def adopt_gone(self, rec: RuntimeRecord) -> None:
        """A worker that ended while no orchestrator watched: its exit goes through the policy
        (exit code from its note in Redis, else counted as killed)."""
        assert rec.pid is not None
        ghost = Worker(
            rec.instance_id, rec.pid, rec.pid_start, rec.since or time.time(), rec.config_version
        )
        self.workers.add(ghost, watch=False)
        self.spawn_task(self._exited(ghost))

    async def claim_adopted(self, records: dict[int, RuntimeRecord]) -> None:
        """Hold the leases of the adopted workers (fencing off those another node took)."""
        await self.placement.claim_adopted(
            records, self.workers, lambda worker: self.signal_stop(worker, "lease")
        )

    def signal_stop(self, worker: Worker, why: str) -> None:
        """SIGTERM now, SIGKILL after the grace period."""
        worker.signal_stop(why, self.policy.stop_grace)

    async def stop_locked(self, iid: int, why: str) -> Worker | None:
        """Stop the instance's worker and wait for it; the caller holds the lock and decides
        what comes next (the exit is not run through the crash policy)."""
        worker = self.workers.get(iid)
        if worker is None:
            return None
        self.signal_stop(worker, why)
        await worker.exited.wait()
        worker.handled = True
        self.workers.forget(worker)
        return worker

    # --- exits ----------------------------------------------------------------------------
    def spawn_task(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _exited(self, worker: Worker) -> None:
        try:
            worker.code = await self.exits.exit_code(worker)
        except Exception as exc:  # noqa: BLE001 - Redis down: an unknown code is a crash
            log.warning("exit code of %s unknown: %s", worker.pid, type(exc).__name__)
        worker.exited.set()
        async with self.locks[worker.instance_id]:
            if worker.handled:
                return
            worker.handled = True
            self.workers.forget(worker)
            try:
                await self.exits.after_exit(worker)
            except Exception:
                log.exception(
                    "instance %s: handling the exit failed; retrying soon",
                    worker.instance_id,
                    extra={"instance_id": worker.instance_id},
                )
                self.schedule(worker.instance_id, time.time() + self.policy.base_delay)

    # --- timers ---------------------------------------------------------------------------
    def schedule(self, iid: int, at: float) -> None:
        """Reconcile the instance again at `at` (replacing its timer)."""
        self.timers.schedule(iid, at)

    async def _timer_fired(self, iid: int) -> None:
        self.timers.fired(iid)
        try:
            await self.reconcile_one(iid, fetch=True)
        except Exception:
            log.exception("instance %s: start after backoff failed; retrying", iid)
            self.schedule(iid, time.time() + min(5.0, self.policy.base_delay))

    def cancel_timer(self, iid: int) -> None:
        self.timers.cancel(iid)

    # --- stuck workers --------------------------------------------------------------------
    async def check_health(self) -> None:
        """Replace workers without a heartbeat for `stuck_after`; rewrite lost records."""
        await self.health.check(self.workers.values(), lambda w: self.signal_stop(w, "stuck"))

    # --- whole node -----------------------------------------------------------------------
    async def drain(self) -> int:
        """Stop every worker of this node and start none until the daemon restarts."""
        self.drained = True
        self.timers.cancel_all()

        async def one(iid: int) -> None:
            async with self.locks[iid]:
                if await self.stop_locked(iid, "drain"):
                    await self.store.transition(iid, S.STOPPED, pid=None, next_start_at=None)
                await self.placement.release(iid)

        ids = list(self.workers)
        await asyncio.gather(*(one(i) for i in set(ids) | set(self.placement.held)))
        return len(ids)

    async def close(self) -> None:
        """Let go of the workers (they keep running) and cancel timers."""
        for worker in self.workers.values():
            worker.let_go()
        self.timers.cancel_all()
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._tasks, return_exceptions=True)
