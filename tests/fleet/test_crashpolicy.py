"""The crash-loop policy: examples of the rules, and properties that hold for any history."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from fleet.crashpolicy import (
    Crash,
    PolicyConfig,
    SessionLimit,
    Verdict,
    WaitReason,
    backoff_delay,
    decide,
    next_utc_midnight,
    streak,
)
from fleet.exitcodes import ExitCode

CFG = PolicyConfig(jitter=0.0)
NOW = 1_800_000_000.0


def crashes(online: list[float], gap: float = 30.0) -> list[Crash]:
    """Newest first; crash i happened i*gap seconds ago after `online[i]` s online."""
    return [Crash(at=NOW - i * gap, code="1", online_s=o) for i, o in enumerate(online)]


def test_crash_after_healthy_run_restarts_at_once():
    d = decide(ExitCode.CRASH, crashes([700, 1, 1, 1]), NOW, cfg=CFG)
    assert d.verdict == Verdict.RESTART and d.delay(NOW) == 0 and d.streak == 1


def test_crash_before_ready_backs_off_10s_then_doubles_capped_at_300s():
    delays = [
        decide(ExitCode.CRASH, crashes([0] * n, gap=400), NOW, cfg=CFG).delay(NOW)
        for n in range(1, 10)
    ]
    assert delays == [0, 10, 20, 40, 80, 160, 300, 300, 300]


def test_streak_resets_after_ten_minutes_online():
    assert streak(crashes([5, 5, 600, 5, 5]), CFG) == 3


def test_five_crashes_in_window_is_a_crashloop_raised_once():
    four = decide(ExitCode.CRASH, crashes([0] * 4), NOW, cfg=CFG)
    five = decide(ExitCode.CRASH, crashes([0] * 5), NOW, cfg=CFG)
    six = decide(ExitCode.CRASH, crashes([0] * 6), NOW, cfg=CFG)
    assert four.verdict == Verdict.RESTART
    assert five.verdict == Verdict.CRASHLOOP and five.new_loop
    assert six.verdict == Verdict.CRASHLOOP and not six.new_loop
    assert five.delay(NOW) == 80


def test_long_streak_is_suspended():
    assert (
        decide(ExitCode.CRASH, crashes([0] * 20, gap=300), NOW, cfg=CFG).verdict == Verdict.SUSPEND
    )


def test_config_error_is_never_restarted():
    assert decide(ExitCode.CONFIG, [], NOW, cfg=CFG).verdict == Verdict.ERROR


def test_session_limit_waits_for_reset():
    d = decide(ExitCode.SESSION_LIMIT, [], NOW, session=SessionLimit(0, NOW + 3600), cfg=CFG)
    assert d.at == NOW + 3600 and d.reason == WaitReason.SESSION_LIMIT


def test_low_session_budget_delays_a_restart_until_reset():
    d = decide(ExitCode.CRASH, crashes([700]), NOW, session=SessionLimit(3, NOW + 99), cfg=CFG)
    assert d.at == NOW + 99 and d.reason == WaitReason.SESSION_LIMIT


def test_daily_budget_spent_waits_for_next_utc_day():
    d = decide(ExitCode.CRASH, crashes([700]), NOW, starts_today=200, cfg=CFG)
    assert d.at == next_utc_midnight(NOW) and d.reason == WaitReason.DAILY_BUDGET


def test_stop_requested_is_not_a_crash():
    assert (
        decide(ExitCode.CRASH, crashes([0] * 3), NOW, stop_requested=True).verdict
        == Verdict.STOPPED
    )


def test_from_env_overrides_constants():
    cfg = PolicyConfig.from_env(
        {"VITRINE_POLICY_BASE_DELAY": "0.5", "VITRINE_POLICY_CRASHLOOP_COUNT": "3"}
    )
    assert cfg.base_delay == 0.5 and cfg.crashloop_count == 3 and cfg.max_delay == 300


history = st.lists(
    st.builds(
        Crash, at=st.floats(NOW - 86400, NOW), code=st.just("1"), online_s=st.floats(0, 3600)
    ),
    max_size=60,
).map(lambda cs: sorted(cs, key=lambda c: -c.at))


@given(history, st.integers(0, 1000), st.integers(0, 2**32))
def test_restart_never_sooner_than_now_nor_later_than_cap_unless_budget(hist, starts, seed):
    cfg = PolicyConfig()
    d = decide(ExitCode.CRASH, hist, NOW, starts_today=starts, cfg=cfg, rng=random.Random(seed))
    if d.verdict in (Verdict.RESTART, Verdict.CRASHLOOP):
        assert d.at is not None and d.at >= NOW
        if d.reason == WaitReason.BACKOFF:
            assert d.at - NOW <= cfg.max_delay * (1 + cfg.jitter)
        if starts >= cfg.daily_budget:
            assert d.reason == WaitReason.DAILY_BUDGET


@given(st.integers(1, 200), st.integers(0, 2**32))
def test_backoff_is_monotonic_without_jitter_and_bounded_with_it(n, seed):
    cfg = PolicyConfig()
    assert backoff_delay(n, CFG) <= backoff_delay(n + 1, CFG)
    jittered = backoff_delay(n, cfg, random.Random(seed))
    assert abs(jittered - backoff_delay(n, CFG)) <= backoff_delay(n, CFG) * cfg.jitter + 1e-9


@given(st.floats(0, 86400), st.integers(0, 2**32), st.floats(0, 30))
def test_a_bot_that_always_crashes_stays_far_below_1000_identifies_per_24h(offset, seed, up):
    cfg = PolicyConfig(suspend_after=10**6)  # never suspended: only backoff and budget act
    rng, start = random.Random(seed), NOW + offset
    t, hist, starts = start, [], []
    while t < start + 86400:
        starts.append(t)
        day = [s for s in starts if int(s // 86400) == int(t // 86400)]
        hist.insert(0, Crash(at=t + up, code="1", online_s=up))
        d = decide(ExitCode.CRASH, hist, t + up, starts_today=len(day), cfg=cfg, rng=rng)
        t = d.at
    assert len(starts) <= 2 * cfg.daily_budget < 1000


@given(history)
def test_config_errors_never_restart_whatever_the_history(hist):
    assert decide(ExitCode.CONFIG, hist, NOW).verdict == Verdict.ERROR
