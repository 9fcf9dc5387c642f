"""The supervisor: spawns, watches, stops and restarts worker processes, one per instance.

Every operation on an instance holds that instance's lock, so a control command, a reconcile
pass, a backoff timer and an exit never interleave for the same bot.

Several nodes may share the database and Redis: a node starts an instance only after taking
its lease (`fleet.leases`), leaves alone the instances whose lease another node holds, and
keeps the leases of what it runs or waits to restart until it lets them go.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import signal
import time
from collections import defaultdict
from dataclasses import dataclass, field

import redis.asyncio as aioredis

from core.i18n import t
from fleet import keys
from fleet.crashpolicy import (
    Crash,
    Decision,
    PolicyConfig,
    SessionLimit,
    Verdict,
    WaitReason,
    decide,
)
from fleet.exitcodes import ExitCode
from fleet.leases import DEFAULT_TTL_S, Lease, LeaseBook, live_nodes, preferred_node
from fleet.runtime import RuntimeRecord, RuntimeStore
from fleet.states import InstanceState
from orchestrator import alerts
from orchestrator.procs import PidWatch, Spawner, is_same_process, proc_start_time, send_signal
from orchestrator.reconciler import Actual, Desired, Step, load_desired, plan

log = logging.getLogger("orchestrator")
S = InstanceState
_UNKNOWN = object()  # "not looked up yet" (None means "looked up: nobody holds it")


@dataclass(eq=False)
class Worker:
    instance_id: int
    pid: int
    start: int | None  # /proc start time: tells our process from a reused pid
    spawned_at: float
    config_version: int | None = None
    watch: PidWatch | None = None
    stopping: str | None = None  # why we asked it to stop ("stop", "restart", "stuck", ...)
    kill_timer: asyncio.TimerHandle | None = None
    code: int | None = None  # exit status; < 0: killed by that signal
    lease: str | None = None  # the lease value it runs under
    handled: bool = False
    exited: asyncio.Event = field(default_factory=asyncio.Event)


class InstanceLock(asyncio.Lock):
    """The per-instance lock; `epoch` counts the locked sections that ended, so a caller that
    read the instance's record before taking the lock knows whether it may be stale."""

    def __init__(self) -> None:
        super().__init__()
        self.epoch = 0

    def release(self) -> None:
        self.epoch += 1
        super().release()


class TokenBucket:
    """Paces worker starts so a mass start does not IDENTIFY hundreds of bots in one second."""

    def __init__(self, rate: float, burst: int, rng: random.Random) -> None:
        self.rate, self.burst, self.rng = rate, burst, rng
        self.tokens = float(burst)
        self.at = time.monotonic()
        self._lock = asyncio.Lock()

    async def take(self) -> None:
        async with self._lock:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
            self.at = now
            if self.tokens >= 1:
                self.tokens -= 1
                return
            wait = (1 - self.tokens) / self.rate
            self.tokens = 0.0
            self.at = now + wait
            # jitter within the slot: starts that queue together do not line up
            await asyncio.sleep(wait + self.rng.uniform(0, 0.5 / self.rate))


class Supervisor:
    def __init__(self, redis: aioredis.Redis, spawner: Spawner, policy: PolicyConfig, node: str,
                 *, spawn_rate: float = 20.0, spawn_burst: int = 10,
                 rng: random.Random | None = None, lease_ttl: float = DEFAULT_TTL_S,
                 placement_grace: float = 5.0) -> None:
        self.redis = redis
        self.store = RuntimeStore(redis)
        self.spawner = spawner
        self.policy = policy
        self.node = node
        self.rng = rng or random.Random()
        self.bucket = TokenBucket(spawn_rate, spawn_burst, self.rng)
        self.workers: dict[int, Worker] = {}
        self.by_pid: dict[int, Worker] = {}
        self.timers: dict[int, asyncio.TimerHandle] = {}
        self.locks: defaultdict[int, InstanceLock] = defaultdict(InstanceLock)
        self.desired: dict[int, Desired] = {}
        self.drained = False
        self.adopted = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.locale = "pt-BR"
        self.leases = LeaseBook(redis, node, lease_ttl)
        self.held: dict[int, str] = {}  # instance id -> lease value this node holds
        self.nodes: set[str] = {node}  # live orchestrator nodes, see live_nodes()
        self._nodes_at = -1e9
        self.placement_grace = placement_grace
        self.unowned_since: dict[int, float] = {}

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
        records = await self.store.get_many(ids)
        holders = await self.leases.holders(ids)
        await asyncio.gather(*(self.reconcile_one(i, records.get(i), holder=holders.get(i),
                                                  epoch=epochs[i]) for i in ids))
        return len(ids)

    async def reconcile_one(self, iid: int, rec: RuntimeRecord | None = None,
                            fetch: bool = False, holder: Lease | None | object = _UNKNOWN,
                            epoch: int | None = None) -> None:
        """Converge one instance. `rec`/`holder` read before the lock (a batch) are read again
        if anything ran under the instance's lock since `epoch` (e.g. an exit was handled:
        acting on the older record would start a bot that just ended in `error`)."""
        lock = self.locks[iid]
        async with lock:
            if fetch or (epoch is not None and lock.epoch != epoch):
                rec = await self.store.get(iid)
                holder = _UNKNOWN
            desired = self.desired.get(iid)
            worker = self.workers.get(iid)
            actual = Actual(alive=worker is not None, state=rec.state if rec else None,
                            config_version=(worker.config_version if worker else
                                            rec.config_version if rec else None),
                            next_start_at=rec.next_start_at if rec else None)
            step = plan(desired, actual, time.time(), self.drained)
            if step != Step.NONE and worker is None and iid not in self.held:
                step = await self._gate(iid, step, holder)
            if step != Step.NONE:
                log.info("instance %s: %s (state %s)", iid, step, actual.state,
                         extra={"instance_id": iid})
            await self._apply(iid, step, desired, actual)

    async def _gate(self, iid: int, step: Step, holder: Lease | None | object = _UNKNOWN,
                    ) -> Step:
        """For an instance this node neither runs nor holds: act only if no other node holds
        its lease, and start it only if this node is where it belongs (or nobody took it)."""
        lease = holder if isinstance(holder, Lease) or holder is None else \
            (await self.leases.holders([iid]))[iid]
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
        preferred node left unowned for `placement_grace` s (that node may be stuck)."""
        if preferred_node(iid, nodes) in (None, self.node):
            self.unowned_since.pop(iid, None)
            return True
        now = time.time()
        first = self.unowned_since.setdefault(iid, now)
        if now - first >= self.placement_grace:
            del self.unowned_since[iid]
            return True
        self._schedule(iid, first + self.placement_grace)  # look again then
        return False

    async def _release(self, iid: int) -> None:
        """Let go of the instance's lease (it rests; any node may start it when wanted)."""
        value = self.held.pop(iid, None)
        if value is not None:
            await self.leases.release(iid, value)

    async def leases_round(self) -> None:
        """Renew this node's leases, then look for the bots of dead nodes to take over."""
        await self.renew_leases()
        if self.drained:
            return
        orphans = await self.leases.orphans(await self.live_nodes(max_age=0))
        if orphans:
            log.info("%d instance(s) of stopped nodes without a lease: reconciling",
                     len(orphans))
            await self.reconcile(orphans)

    async def renew_leases(self) -> None:
        """Renew every lease this node holds; let go of the instances another node took."""
        held = dict(self.held)
        for iid in await self.leases.renew(held):
            if self.held.get(iid) != held[iid]:
                continue  # re-acquired meanwhile
            del self.held[iid]
            log.warning("instance %s: its lease is held by another node now; letting go",
                        iid, extra={"instance_id": iid})
            self.cancel_timer(iid)
            worker = self.workers.get(iid)
            if worker is not None:
                self.signal_stop(worker, "lease")

    async def claim_adopted(self, records: dict[int, RuntimeRecord]) -> None:
        """Hold the leases of the workers adopted after a restart: the value each was started
        with, if nobody else holds the lease meanwhile (else the worker is fenced off)."""
        ids = [i for i in records if i in self.workers]
        current = await self.leases.holders(ids)
        for iid in ids:
            rec, lease, worker = records[iid], current[iid], self.workers[iid]
            if lease is not None and lease.node != self.node:
                log.warning("instance %s: adopted worker %s is fenced off by node %s",
                            iid, worker.pid, lease.node, extra={"instance_id": iid})
                self.signal_stop(worker, "lease")
                continue
            value = lease.value if lease is not None else rec.lease
            if value is None:  # a worker started before leases existed
                granted, _ = await self.leases.acquire(iid)
                value = granted.value if granted else None
            if value is not None:
                self.held[iid] = value
                worker.lease = value

    async def _apply(self, iid: int, step: Step, desired: Desired | None, actual: Actual) -> None:
        if step == Step.START:
            assert desired is not None
            self.cancel_timer(iid)
            await self.start(iid, desired.config_version)
        elif step == Step.RESTART:
            assert desired is not None
            await self.stop_locked(iid, "restart")
            await self.start(iid, desired.config_version)
        elif step in (Step.STOP, Step.REST):
            self.cancel_timer(iid)
            await self.stop_locked(iid, "stop")
            rest = desired.rest_state if desired else S.STOPPED
            await self.store.transition(iid, rest, pid=None, next_start_at=None)
            await self._release(iid)
        elif actual.next_start_at and actual.state in (S.BACKOFF, S.CRASHLOOP):
            self._schedule(iid, actual.next_start_at)  # e.g. timers of a previous orchestrator

    # --- start / stop -------------------------------------------------------------------
    async def start(self, iid: int, config_version: int | None) -> Worker | None:
        """Take the lease and fork a worker now (paced by the bucket); the caller holds the
        instance lock. None: another node holds the lease."""
        lease, other = await self.leases.acquire(iid)
        if lease is None:
            log.info("instance %s: not started, node %s holds it", iid,
                     other.node if other else "?", extra={"instance_id": iid})
            self.held.pop(iid, None)
            self.cancel_timer(iid)
            return None
        self.held[iid] = lease.value
        try:
            return await self._fork(iid, config_version, lease.value)
        except BaseException:
            await self._release(iid)
            raise

    async def _fork(self, iid: int, config_version: int | None, lease: str) -> Worker:
        await self.bucket.take()
        day = time.strftime("%Y%m%d", time.gmtime())
        pipe = self.redis.pipeline(transaction=False)
        pipe.incr(keys.restart_budget(iid, day))
        pipe.expire(keys.restart_budget(iid, day), 2 * 86400)
        await pipe.execute()
        pid = await self.spawner.spawn(iid, lease)
        worker = Worker(iid, pid, proc_start_time(pid), time.time(), config_version, lease=lease)
        self.workers[iid] = worker
        self.by_pid[pid] = worker
        self._watch(worker)  # before any await that can fail: a live worker is always watched
        await self.store.transition(iid, S.STARTING, pid=pid, pid_start=worker.start,
                                    node=self.node, config_version=config_version,
                                    spawned_at=f"{worker.spawned_at:.3f}", next_start_at=None,
                                    online_since=None, lease=lease)
        log.info("instance %s: worker %s started", iid, pid, extra={"instance_id": iid})
        return worker

    def _watch(self, worker: Worker) -> None:
        try:
            worker.watch = PidWatch(worker.pid, self._on_exit)
        except ProcessLookupError:  # already gone
            self._on_exit(worker.pid)

    def adopt(self, rec: RuntimeRecord, spawned_at: float | None) -> bool:
        """Watch a live worker left by a previous orchestrator; False when it is gone."""
        if rec.pid is None or not is_same_process(rec.pid, rec.pid_start):
            return False
        worker = Worker(rec.instance_id, rec.pid, rec.pid_start, spawned_at or rec.since or
                        time.time(), rec.config_version, lease=rec.lease)
        self.workers[rec.instance_id] = worker
        self.by_pid[rec.pid] = worker
        self._watch(worker)
        self.adopted += 1
        return True

    def adopt_gone(self, rec: RuntimeRecord) -> None:
        """A worker that ended while no orchestrator watched: its exit goes through the policy
        (exit code from its note in Redis, else counted as killed)."""
        assert rec.pid is not None
        ghost = Worker(rec.instance_id, rec.pid, rec.pid_start, rec.since or time.time(),
                       rec.config_version)
        self.workers[rec.instance_id] = ghost
        self.by_pid[rec.pid] = ghost
        self.spawn_task(self._exited(ghost))

    def signal_stop(self, worker: Worker, why: str) -> None:
        """SIGTERM now, SIGKILL after the grace period."""
        worker.stopping = worker.stopping or why
        if worker.exited.is_set():
            return
        if why == "stuck":  # its stacks go to <id>.stderr.log: why was it stuck?
            send_signal(worker.pid, signal.SIGUSR1, worker.start)
        send_signal(worker.pid, signal.SIGTERM, worker.start)
        if worker.kill_timer is None:
            worker.kill_timer = asyncio.get_running_loop().call_later(
                self.policy.stop_grace, send_signal, worker.pid, signal.SIGKILL, worker.start)

    async def stop_locked(self, iid: int, why: str) -> Worker | None:
        """Stop the instance's worker and wait for it; the caller holds the lock and decides
        what comes next (the exit is not run through the crash policy)."""
        worker = self.workers.get(iid)
        if worker is None:
            return None
        self.signal_stop(worker, why)
        await worker.exited.wait()
        worker.handled = True
        self._forget(worker)
        return worker

    def _forget(self, worker: Worker) -> None:
        if self.workers.get(worker.instance_id) is worker:
            del self.workers[worker.instance_id]
        self.by_pid.pop(worker.pid, None)
        if worker.watch is not None:
            worker.watch.close()
        if worker.kill_timer is not None:
            worker.kill_timer.cancel()

    # --- exits ----------------------------------------------------------------------------
    def _on_exit(self, pid: int) -> None:
        worker = self.by_pid.get(pid)
        if worker is not None:
            self.spawn_task(self._exited(worker))

    def spawn_task(self, coro) -> None:  # type: ignore[no-untyped-def]
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _exit_code(self, worker: Worker) -> int | None:
        code = await self.spawner.exit_code(worker.pid)
        if code is not None:
            return code
        info = await self.redis.hgetall(keys.exit_info(worker.instance_id))
        if info.get("pid") == str(worker.pid) and info.get("code", "").lstrip("-").isdigit():
            return int(info["code"])
        return None  # not our child and it left no note: killed

    async def _exited(self, worker: Worker) -> None:
        try:
            worker.code = await self._exit_code(worker)
        except Exception as exc:  # noqa: BLE001 - Redis down: an unknown code is a crash
            log.warning("exit code of %s unknown: %s", worker.pid, type(exc).__name__)
        worker.exited.set()
        async with self.locks[worker.instance_id]:
            if worker.handled:
                return
            worker.handled = True
            self._forget(worker)
            try:
                await self._after_exit(worker)
            except Exception:
                log.exception("instance %s: handling the exit failed; retrying soon",
                              worker.instance_id, extra={"instance_id": worker.instance_id})
                self._schedule(worker.instance_id, time.time() + self.policy.base_delay)

    async def _after_exit(self, worker: Worker) -> None:
        iid, now, code = worker.instance_id, time.time(), worker.code
        if code == ExitCode.LEASE_LOST or worker.stopping == "lease":
            # fenced off: the node that holds the lease now runs it and writes its record
            if worker.lease is not None and self.held.get(iid) == worker.lease:
                del self.held[iid]
            log.info("instance %s: worker %s let go (lease held elsewhere)", iid, worker.pid,
                     extra={"instance_id": iid})
            return
        if worker.stopping == "restart":
            code = ExitCode.RESTART_REQUESTED
        if worker.stopping in ("stop", "drain"):
            desired = self.desired.get(iid)
            rest = desired.rest_state if desired and not desired.run else S.STOPPED
            await self.store.transition(iid, rest, pid=None)
            await self._release(iid)
            return
        rec = await self.store.get(iid)
        if code not in (ExitCode.CONFIG, ExitCode.SESSION_LIMIT, ExitCode.RESTART_REQUESTED):
            await self._record_crash(worker, rec, now)
        facts = await self._facts(iid)
        decision = decide(code, facts[0], now, starts_today=facts[1], session=facts[2],
                          cfg=self.policy, rng=self.rng)
        log.info("instance %s: worker %s ended (code %s, %s): %s", iid, worker.pid, code,
                 worker.stopping or "unexpected", decision, extra={"instance_id": iid})
        await self._apply_decision(iid, decision, rec, facts[0], now)

    async def _record_crash(self, worker: Worker, rec: RuntimeRecord | None, now: float) -> None:
        iid, code = worker.instance_id, worker.code
        online_s = now - rec.online_since if rec and rec.online_since and \
            rec.state == S.ONLINE else 0.0
        label = ("stuck" if worker.stopping == "stuck" else
                 f"signal:{-code}" if code is not None and code < 0 else
                 "killed" if code is None else str(code))
        if worker.stopping == "stuck":
            message = t("runtime.error.stuck", self.locale)
        elif code == ExitCode.CRASH and rec and rec.last_error \
                and rec.last_error.at > worker.spawned_at:
            message = rec.last_error.message  # the worker said why
        else:
            detail = f"sinal {-code}" if code is not None and code < 0 else f"código {label}"
            message = t("runtime.error.crash", self.locale, detail=detail)
        if not (rec and rec.last_error and rec.last_error.message == message
                and rec.last_error.at > worker.spawned_at):
            await self.store.set_last_error(iid, message, label)
        crash = Crash(at=now, code=label, online_s=online_s, error=message)
        await self.store.record_crash(iid, crash.to_dict())

    async def _facts(self, iid: int) -> tuple[list[Crash], int, SessionLimit | None]:
        day = time.strftime("%Y%m%d", time.gmtime())
        pipe = self.redis.pipeline(transaction=False)
        pipe.lrange(keys.crashes(iid), 0, keys.CRASH_HISTORY_MAX - 1)
        pipe.get(keys.restart_budget(iid, day))
        pipe.hgetall(keys.session_limit(iid))
        raw_crashes, starts, ssl = await pipe.execute()
        history = [Crash.from_dict(json.loads(c)) for c in raw_crashes]
        session = None
        if ssl.get("remaining") and ssl.get("reset_at"):
            session = SessionLimit(int(ssl["remaining"]), float(ssl["reset_at"]))
        return history, int(starts or 0), session

    async def _apply_decision(self, iid: int, decision: Decision, rec: RuntimeRecord | None,
                              history: list[Crash], now: float) -> None:
        desired = self.desired.get(iid)
        errors = [c.to_dict() for c in history[:10]]
        if decision.verdict != Verdict.RESTART and decision.verdict != Verdict.CRASHLOOP or \
                desired is None or not desired.run or self.drained:
            await self._release(iid)  # it rests: nobody runs it until something changes
        if decision.verdict == Verdict.ERROR:
            await self.store.transition(iid, S.ERROR, pid=None, next_start_at=None)
        elif decision.verdict == Verdict.SUSPEND:
            reason = t("runtime.error.auto_suspended", self.locale, count=decision.streak)
            await alerts.auto_suspend(iid, desired.tenant_id if desired else None, reason, errors)
            await self.store.set_last_error(iid, reason, "auto_suspended")
            await self.store.transition(iid, S.SUSPENDED, pid=None, next_start_at=None)
            self.desired.pop(iid, None)
            self.spawn_task(self.reconcile({iid}))
        elif desired is None or not desired.run or self.drained:
            rest = desired.rest_state if desired else S.STOPPED
            await self.store.transition(iid, rest, pid=None, next_start_at=None)
        else:
            await self._restart_later(iid, decision, rec, errors, now, desired)

    async def _restart_later(self, iid: int, decision: Decision, rec: RuntimeRecord | None,
                             errors: list[dict[str, object]], now: float,
                             desired: Desired) -> None:
        at = decision.at if decision.at is not None else now
        when = time.strftime("%H:%M:%S UTC", time.gmtime(at))
        if decision.reason == WaitReason.SESSION_LIMIT:
            await self.store.set_last_error(
                iid, t("runtime.error.session_limit", self.locale, when=when), "session_limit")
        elif decision.reason == WaitReason.DAILY_BUDGET:
            await self.store.set_last_error(
                iid, t("runtime.error.restart_budget", self.locale, when=when), "restart_budget")
        if decision.verdict == Verdict.CRASHLOOP:
            await self.store.set_last_error(iid, t("runtime.error.crashloop", self.locale,
                                                   count=decision.streak, when=when), "crashloop")
            if decision.new_loop:
                await alerts.crashloop_alert(iid, desired.tenant_id, decision.streak, errors)
        if at <= now + 0.001:
            await self.start(iid, desired.config_version)
            return
        state = S.CRASHLOOP if decision.verdict == Verdict.CRASHLOOP else S.BACKOFF
        await self.store.transition(iid, state, pid=None, next_start_at=f"{at:.3f}")
        self._schedule(iid, at)

    # --- timers ---------------------------------------------------------------------------
    def _schedule(self, iid: int, at: float) -> None:
        self.cancel_timer(iid)
        loop = asyncio.get_running_loop()
        delay = max(0.0, at - time.time())
        self.timers[iid] = loop.call_later(
            delay, lambda: self.spawn_task(self._timer_fired(iid)))

    async def _timer_fired(self, iid: int) -> None:
        self.timers.pop(iid, None)
        try:
            await self.reconcile_one(iid, fetch=True)
        except Exception:
            log.exception("instance %s: start after backoff failed; retrying", iid)
            self._schedule(iid, time.time() + min(5.0, self.policy.base_delay))

    def cancel_timer(self, iid: int) -> None:
        handle = self.timers.pop(iid, None)
        if handle is not None:
            handle.cancel()

    # --- stuck workers --------------------------------------------------------------------
    async def check_health(self) -> None:
        """Replace workers without a heartbeat for `stuck_after`; rewrite lost records."""
        workers = [w for w in self.workers.values() if w.stopping is None]
        if not workers:
            return
        pipe = self.redis.pipeline(transaction=False)
        for w in workers:
            pipe.get(keys.heartbeat(w.instance_id))
            pipe.hget(keys.runtime(w.instance_id), "state")
        values = await pipe.execute()
        now = time.time()
        for index, w in enumerate(workers):
            beat, state = values[2 * index], values[2 * index + 1]
            last = max(float(beat) if beat else 0.0, w.spawned_at)
            if now - last > self.policy.stuck_after:
                log.warning("instance %s: no heartbeat for %.0f s; replacing worker %s",
                            w.instance_id, now - last, w.pid, extra={"instance_id": w.instance_id})
                self.signal_stop(w, "stuck")
            elif state is None:  # Redis lost our record (restart without persistence)
                await self._repair(w, online=beat is not None)

    async def _repair(self, worker: Worker, online: bool) -> None:
        log.warning("instance %s: runtime record missing; rewriting it", worker.instance_id)
        await self.store.transition(
            worker.instance_id, S.ONLINE if online else S.STARTING, pid=worker.pid,
            pid_start=worker.start, node=self.node, config_version=worker.config_version,
            spawned_at=f"{worker.spawned_at:.3f}")

    # --- whole node -----------------------------------------------------------------------
    async def drain(self) -> int:
        """Stop every worker of this node and start none until the daemon restarts."""
        self.drained = True
        for iid in list(self.timers):
            self.cancel_timer(iid)

        async def one(iid: int) -> None:
            async with self.locks[iid]:
                if await self.stop_locked(iid, "drain"):
                    await self.store.transition(iid, S.STOPPED, pid=None, next_start_at=None)
                await self._release(iid)

        ids = list(self.workers)
        await asyncio.gather(*(one(i) for i in set(ids) | set(self.held)))
        return len(ids)

    async def close(self) -> None:
        """Let go of the workers (they keep running) and cancel timers."""
        for worker in list(self.workers.values()):
            if worker.watch is not None:
                worker.watch.close()
            if worker.kill_timer is not None:
                worker.kill_timer.cancel()
        for iid in list(self.timers):
            self.cancel_timer(iid)
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._tasks, return_exceptions=True)
