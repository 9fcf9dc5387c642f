"""The crash-loop policy: pure functions from (exit, crash history, budgets) to a decision.

No I/O, no clock, no randomness of its own: the caller passes `now` and a `random.Random`, so
tests (and hypothesis) drive it exactly. The constants live in `PolicyConfig`; production uses
the defaults, tests shorten them through the environment (`PolicyConfig.from_env`) and go
through the same code path.
"""

from __future__ import annotations

import calendar
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from enum import StrEnum
from typing import Any

from core.tuning import tuning_float, tuning_int
from fleet.exitcodes import ExitCode

_DAY = 86400.0
# What each `VITRINE_POLICY_<FIELD>` may be; outside it the process does not start.
_BOUNDS: dict[str, tuple[float, float]] = {
    "base_delay": (0.0, _DAY),
    "factor": (1.0, 100.0),
    "max_delay": (0.0, _DAY),
    "jitter": (0.0, 1.0),
    "healthy_after": (0.0, 30 * _DAY),
    "crashloop_count": (1, 1_000_000),
    "crashloop_window": (0.0, 30 * _DAY),
    "suspend_after": (1, 1_000_000),
    "daily_budget": (1, 1_000_000),
    "session_reserve": (0, 1000),
    "stuck_after": (0.1, _DAY),
    "stop_grace": (0.0, 3600.0),
}


@dataclass(frozen=True)
class PolicyConfig:
    """Every knob of the policy; `VITRINE_POLICY_<NAME>` overrides one (docs/orchestrator.md)."""

    base_delay: float = 10.0  # second crash of a streak waits this long; then it doubles
    factor: float = 2.0
    max_delay: float = 300.0
    jitter: float = 0.1  # +/- this fraction of the delay, so bots that fail together spread out
    healthy_after: float = 600.0  # online this long: the next crash restarts at once
    crashloop_count: int = 5  # this many crashes ...
    crashloop_window: float = 900.0  # ... inside this window -> state crashloop + alert
    suspend_after: int = 20  # a streak this long -> suspended automatically
    # logins per bot per UTC day (Discord allows 1000 IDENTIFYs / 24 h); `starts_today` below
    # is that count, kept by the workers per IDENTIFY: a start that RESUMEs spends none
    daily_budget: int = 200
    session_reserve: int = 5  # keep this many IDENTIFYs of session_start_limit in hand
    stuck_after: float = 60.0  # no heartbeat this long -> the worker is stuck
    stop_grace: float = 10.0  # SIGTERM -> SIGKILL

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> PolicyConfig:
        """Defaults, overridden by `VITRINE_POLICY_<FIELD>` variables (e.g. ..._BASE_DELAY=0.5);
        `TuningError` names a bad one."""
        changes: dict[str, float | int] = {}
        for f in fields(cls):
            name, (lo, hi) = f"VITRINE_POLICY_{f.name.upper()}", _BOUNDS[f.name]
            default = getattr(cls, f.name)
            if f.type in ("int", int):
                changes[f.name] = tuning_int(name, default, int(lo), int(hi), environ)
            else:
                changes[f.name] = tuning_float(name, default, lo, hi, environ)
        # replace() is checked field by field; the dict of mixed float|int values is not.
        return replace(cls(), **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Crash:
    """One unexpected end of a worker."""

    at: float  # when it ended
    code: str  # exit code, "signal:9", "stuck", ...
    online_s: float = 0.0  # how long it had been online (0: never reached READY)
    error: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {"at": self.at, "code": self.code, "online_s": self.online_s, "error": self.error}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Crash:
        return cls(
            at=float(data.get("at", 0.0)),
            code=str(data.get("code", "")),
            online_s=float(data.get("online_s", 0.0) or 0.0),
            error=data.get("error") or None,
        )


@dataclass(frozen=True)
class SessionLimit:
    """Discord's session_start_limit as last read by the worker."""

    remaining: int
    reset_at: float  # epoch seconds


class Verdict(StrEnum):
    RESTART = "restart"  # start again at `at` (possibly now); state backoff while waiting
    CRASHLOOP = "crashloop"  # start again at `at`, state crashloop, alert once
    SUSPEND = "suspend"  # streak too long: suspended automatically, needs a human
    ERROR = "error"  # configuration error: never restarted automatically
    STOPPED = "stopped"  # it stopped because it was asked to


class WaitReason(StrEnum):
    BACKOFF = "backoff"
    SESSION_LIMIT = "session_limit"
    DAILY_BUDGET = "daily_budget"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    at: float | None = None  # when to start again (RESTART / CRASHLOOP)
    streak: int = 0
    reason: WaitReason | None = None
    new_loop: bool = False  # this crash made it a crash loop (raise the alert once)

    def delay(self, now: float) -> float | None:
        return None if self.at is None else max(0.0, self.at - now)


def streak(history: Sequence[Crash], cfg: PolicyConfig) -> int:
    """Crashes since the last healthy run (newest first); a crash after a healthy run is #1."""
    count = 0
    for crash in history:
        count += 1
        if crash.online_s >= cfg.healthy_after:
            break
    return count


def backoff_delay(n: int, cfg: PolicyConfig, rng: random.Random | None = None) -> float:
    """Delay before restart #n of a streak: 0, base, base*f, ... capped, with jitter."""
    if n <= 1:
        return 0.0
    delay = min(cfg.max_delay, cfg.base_delay * cfg.factor ** min(n - 2, 64))
    if rng is not None and cfg.jitter > 0:
        delay *= 1 + rng.uniform(-cfg.jitter, cfg.jitter)
    return max(0.0, min(delay, cfg.max_delay * (1 + cfg.jitter)))


def in_window(history: Sequence[Crash], now: float, cfg: PolicyConfig) -> int:
    return sum(1 for c in history if now - c.at <= cfg.crashloop_window)


def next_utc_midnight(now: float) -> float:
    day = time.gmtime(now)
    return calendar.timegm((day.tm_year, day.tm_mon, day.tm_mday, 0, 0, 0)) + 86400.0


def gate_start(
    at: float, *, starts_today: int, session: SessionLimit | None, cfg: PolicyConfig
) -> tuple[float, WaitReason | None]:
    """Push a start time later when a daily budget is spent; (when, why it waits)."""
    if session is not None and session.remaining <= cfg.session_reserve and session.reset_at > at:
        return session.reset_at, WaitReason.SESSION_LIMIT
    if starts_today >= cfg.daily_budget:
        return max(at, next_utc_midnight(at)), WaitReason.DAILY_BUDGET
    return at, None


def decide(
    exit_code: int | None,
    history: Sequence[Crash],
    now: float,
    *,
    starts_today: int = 0,
    session: SessionLimit | None = None,
    stop_requested: bool = False,
    cfg: PolicyConfig = PolicyConfig(),
    rng: random.Random | None = None,
) -> Decision:
    """What to do after a worker ended. `history` is newest first and already holds this crash
    when the end was a crash (the caller records it first)."""
    if stop_requested:
        return Decision(Verdict.STOPPED)
    if exit_code == ExitCode.CONFIG:
        return Decision(Verdict.ERROR)
    if exit_code == ExitCode.SESSION_LIMIT:
        reset = session.reset_at if session is not None else now + cfg.max_delay
        return Decision(Verdict.RESTART, at=max(now, reset), reason=WaitReason.SESSION_LIMIT)
    if exit_code == ExitCode.RESTART_REQUESTED:
        at, why = gate_start(now, starts_today=starts_today, session=session, cfg=cfg)
        return Decision(Verdict.RESTART, at=at, reason=why)
    n = streak(history, cfg)
    if n >= cfg.suspend_after:
        return Decision(Verdict.SUSPEND, streak=n)
    at, why = gate_start(
        now + backoff_delay(n, cfg, rng), starts_today=starts_today, session=session, cfg=cfg
    )
    looping = in_window(history[:n], now, cfg) >= cfg.crashloop_count
    was_looping = n >= 2 and in_window(history[1:n], history[1].at, cfg) >= cfg.crashloop_count
    return Decision(
        Verdict.CRASHLOOP if looping else Verdict.RESTART,
        at=at,
        streak=n,
        reason=why or WaitReason.BACKOFF,
        new_loop=looping and not was_looping,
    )
