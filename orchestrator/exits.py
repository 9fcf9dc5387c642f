"""Exits and crash decisions: what happens after a worker ended on its own (or was killed).

The exit code comes from the zygote (our child) or from the note the worker left in Redis
(adopted); the crash is recorded, `fleet.crashpolicy.decide` says what to do, and this module
carries it out: rest, `error`, suspension, a restart now or at a later time.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Coroutine
from typing import Any, Protocol, cast

import redis.asyncio as aioredis

from core.i18n import t
from fleet import keys
from fleet.alerting import alert_key, repeated_error, repeated_error_count
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
from fleet.models import Alert, AlertKind
from fleet.runtime import RuntimeRecord, RuntimeStore
from fleet.states import InstanceState
from orchestrator import alerts
from orchestrator.desired_state import Desired
from orchestrator.placement import Placement
from orchestrator.worker_table import Worker
from orchestrator.zygote_client import Spawner

log = logging.getLogger("orchestrator")
S = InstanceState


class ExitHost(Protocol):
    """What exit handling uses of the supervisor (its public side)."""

    redis: aioredis.Redis
    store: RuntimeStore
    spawner: Spawner
    policy: PolicyConfig
    rng: random.Random
    locale: str
    desired: dict[int, Desired]
    drained: bool
    placement: Placement

    async def start_locked(self, iid: int, config_version: int | None) -> Worker | None: ...

    def schedule(self, iid: int, at: float) -> None: ...

    def spawn_task(self, coro: Coroutine[Any, Any, Any]) -> None: ...

    async def reconcile(self, ids: set[int] | None = None) -> int: ...


class ExitHandler:
    """Runs an ended worker through the crash policy; the caller holds the instance lock."""

    def __init__(self, host: ExitHost) -> None:
        self.host = host

    async def exit_code(self, worker: Worker) -> int | None:
        code = await self.host.spawner.exit_code(worker.pid)
        if code is not None:
            return code
        # the client decodes responses to str (core.redis: decode_responses=True)
        info = cast(
            dict[str, str], await self.host.redis.hgetall(keys.exit_info(worker.instance_id))
        )
        if info.get("pid") == str(worker.pid) and info.get("code", "").lstrip("-").isdigit():
            return int(info["code"])
        return None  # not our child and it left no note: killed

    async def after_exit(self, worker: Worker) -> None:
        """Decide and act on a worker's exit (not one the supervisor asked for and awaited)."""
        host = self.host
        iid, now, code = worker.instance_id, time.time(), worker.code
        if code == ExitCode.LEASE_LOST or worker.stopping == "lease":
            # fenced off: the node that holds the lease now runs it and writes its record
            host.placement.forget(iid, worker.lease)
            # ...unless nobody does (the database refused the worker while Redis, restarted
            # empty, still names this node): look again once the lease can have lapsed
            host.schedule(iid, now + host.placement.book.ttl_ms / 1000)
            log.info(
                "instance %s: worker %s let go (lease held elsewhere)",
                iid,
                worker.pid,
                extra={"instance_id": iid},
            )
            return
        if worker.stopping == "restart":
            code = ExitCode.RESTART_REQUESTED
        if worker.stopping in ("stop", "drain"):
            desired = host.desired.get(iid)
            rest = desired.rest_state if desired and not desired.run else S.STOPPED
            await host.store.transition(iid, rest, pid=None)
            await host.placement.release(iid)
            return
        # One round trip before the decision (record and history read together), and the
        # crash is written while the replacement starts, not before: a first crash's
        # replacement waits only for its lease and the fork (docs/orchestrator.md, "Crash ->
        # replacement latency").
        rec, facts = await asyncio.gather(host.store.get(iid), self._facts(iid))
        crash: Crash | None = None
        if code not in (ExitCode.CONFIG, ExitCode.SESSION_LIMIT, ExitCode.RESTART_REQUESTED):
            crash = self._crash_of(worker, rec, now)
        history = [crash, *facts[0]][: keys.CRASH_HISTORY_MAX] if crash else facts[0]
        decision = decide(
            code,
            history,
            now,
            starts_today=facts[1],
            session=facts[2],
            cfg=host.policy,
            rng=host.rng,
        )
        log.info(
            "instance %s: worker %s ended (code %s, %s): %s",
            iid,
            worker.pid,
            code,
            worker.stopping or "unexpected",
            decision,
            extra={"instance_id": iid},
        )
        await asyncio.gather(
            self._save_crash(iid, crash, rec, worker.spawned_at),
            self._apply_decision(iid, decision, history, now),
        )
        if code not in (ExitCode.CONFIG, ExitCode.SESSION_LIMIT, ExitCode.RESTART_REQUESTED) and (
            decision.verdict not in (Verdict.CRASHLOOP, Verdict.SUSPEND)
        ):
            await self._repeated_error(iid)

    async def _repeated_error(self, iid: int) -> None:
        """`repeated_error` when the same error came ALERT_REPEATED_ERROR_COUNT times in 24 h
        and no crash-loop alert already says so."""
        try:
            hit = repeated_error(
                await self.host.store.error_history(iid), time.time(), repeated_error_count()
            )
            if (
                hit is None
                or await Alert.filter(
                    open_key=alert_key(AlertKind.CRASHLOOP, f"instance:{iid}")
                ).exists()
            ):
                return
            desired = self.host.desired.get(iid)
            await alerts.repeated_error_alert(
                iid, desired.tenant_id if desired else None, hit.message, repeated_error_count()
            )
        except Exception:  # noqa: BLE001 - an alert never stands in the way of a restart
            log.exception("instance %s: repeated_error alert failed", iid)

    def _crash_of(self, worker: Worker, rec: RuntimeRecord | None, now: float) -> Crash:
        """The crash a worker's unexpected end is recorded as (label and plain message)."""
        code, locale = worker.code, self.host.locale
        online_s = (
            now - rec.online_since if rec and rec.online_since and rec.state == S.ONLINE else 0.0
        )
        label = (
            "stuck"
            if worker.stopping == "stuck"
            else f"signal:{-code}"
            if code is not None and code < 0
            else "killed"
            if code is None
            else str(code)
        )
        if worker.stopping == "stuck":
            message = t("runtime.error.stuck", locale)
        elif (
            code == ExitCode.CRASH
            and rec
            and rec.last_error
            and rec.last_error.at > worker.spawned_at
        ):
            message = rec.last_error.message  # the worker said why
        else:
            detail = f"sinal {-code}" if code is not None and code < 0 else f"código {label}"
            message = t("runtime.error.crash", locale, detail=detail)
        return Crash(at=now, code=label, online_s=online_s, error=message)

    async def _save_crash(
        self, iid: int, crash: Crash | None, rec: RuntimeRecord | None, spawned_at: float
    ) -> None:
        """Write the crash and, unless the worker already said the same, its lastError."""
        if crash is None:
            return
        message = crash.error or ""
        if not (
            rec
            and rec.last_error
            and rec.last_error.message == message
            and rec.last_error.at > spawned_at
        ):
            await self.host.store.set_last_error(iid, message, crash.code)
        await self.host.store.record_crash(iid, crash.to_dict())

    async def _facts(self, iid: int) -> tuple[list[Crash], int, SessionLimit | None]:
        day = time.strftime("%Y%m%d", time.gmtime())
        pipe = self.host.redis.pipeline(transaction=False)
        pipe.lrange(keys.crashes(iid), 0, keys.CRASH_HISTORY_MAX - 1)
        pipe.get(keys.restart_budget(iid, day))
        pipe.hgetall(keys.session_limit(iid))
        raw_crashes, starts, ssl = await pipe.execute()
        history = [Crash.from_dict(json.loads(c)) for c in raw_crashes]
        session = None
        if ssl.get("remaining") and ssl.get("reset_at"):
            session = SessionLimit(int(ssl["remaining"]), float(ssl["reset_at"]))
        return history, int(starts or 0), session

    async def _apply_decision(
        self, iid: int, decision: Decision, history: list[Crash], now: float
    ) -> None:
        host = self.host
        desired = host.desired.get(iid)
        errors = [c.to_dict() for c in history[:10]]
        if (
            decision.verdict != Verdict.RESTART
            and decision.verdict != Verdict.CRASHLOOP
            or desired is None
            or not desired.run
            or host.drained
        ):
            await host.placement.release(iid)  # it rests: nobody runs it until something changes
        if decision.verdict == Verdict.ERROR:
            await host.store.transition(iid, S.ERROR, pid=None, next_start_at=None)
            rec = await host.store.get(iid)
            if rec is not None and rec.last_error is not None:
                await alerts.config_error_alert(
                    iid,
                    desired.tenant_id if desired else None,
                    rec.last_error.message,
                    rec.last_error.code,
                )
        elif decision.verdict == Verdict.SUSPEND:
            reason = t("runtime.error.auto_suspended", host.locale, count=decision.streak)
            await alerts.auto_suspend(iid, desired.tenant_id if desired else None, reason, errors)
            await host.store.set_last_error(iid, reason, "auto_suspended")
            await host.store.transition(iid, S.SUSPENDED, pid=None, next_start_at=None)
            host.desired.pop(iid, None)
            host.spawn_task(host.reconcile({iid}))
        elif desired is None or not desired.run or host.drained:
            rest = desired.rest_state if desired else S.STOPPED
            await host.store.transition(iid, rest, pid=None, next_start_at=None)
        else:
            await self._restart_later(iid, decision, errors, now, desired)

    async def _restart_later(
        self,
        iid: int,
        decision: Decision,
        errors: list[dict[str, object]],
        now: float,
        desired: Desired,
    ) -> None:
        host = self.host
        at = decision.at if decision.at is not None else now
        when = time.strftime("%H:%M:%S UTC", time.gmtime(at))
        if decision.reason == WaitReason.SESSION_LIMIT:
            await host.store.set_last_error(
                iid, t("runtime.error.session_limit", host.locale, when=when), "session_limit"
            )
        elif decision.reason == WaitReason.DAILY_BUDGET:
            await host.store.set_last_error(
                iid, t("runtime.error.restart_budget", host.locale, when=when), "restart_budget"
            )
        if decision.verdict == Verdict.CRASHLOOP:
            await host.store.set_last_error(
                iid,
                t("runtime.error.crashloop", host.locale, count=decision.streak, when=when),
                "crashloop",
            )
            if decision.new_loop:
                await alerts.crashloop_alert(iid, desired.tenant_id, decision.streak, errors)
        if at <= now + 0.001:
            await host.start_locked(iid, desired.config_version)
            return
        state = S.CRASHLOOP if decision.verdict == Verdict.CRASHLOOP else S.BACKOFF
        await host.store.transition(iid, state, pid=None, next_start_at=f"{at:.3f}")
        host.schedule(iid, at)
