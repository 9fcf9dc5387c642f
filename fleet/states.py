"""Bot instance states: one enum, named groups, one transition table. Imports only the shared
`core.errors.IllegalTransition` (which imports nothing)."""

from __future__ import annotations

from enum import StrEnum

from core.errors import IllegalTransition


class InstanceState(StrEnum):
    """What a bot instance is doing right now (the runtime record in Redis)."""

    STOPPED = "stopped"  # not running, and not supposed to run
    STARTING = "starting"  # worker spawned, gateway not READY yet
    ONLINE = "online"  # READY and heart-beating
    BACKOFF = "backoff"  # crashed; waiting for its restart deadline
    CRASHLOOP = "crashloop"  # too many crashes in the window; long back-off, alert raised
    ERROR = "error"  # configuration error (bad token, intents); never auto-restarted
    SUSPENDED = "suspended"  # stopped by an admin or by the crash policy, with a reason


class DesiredState(StrEnum):
    """What the tenant wants (stored in the database)."""

    RUNNING = "running"
    STOPPED = "stopped"


LIVE_STATES = frozenset({InstanceState.STARTING, InstanceState.ONLINE})
DOWN_STATES = frozenset(
    {InstanceState.ERROR, InstanceState.CRASHLOOP, InstanceState.SUSPENDED, InstanceState.BACKOFF}
)
# States the orchestrator never leaves on its own: a human (tenant or admin) has to act.
HUMAN_STATES = frozenset({InstanceState.ERROR, InstanceState.SUSPENDED})

_S = InstanceState
TRANSITIONS: dict[InstanceState, frozenset[InstanceState]] = {
    _S.STOPPED: frozenset({_S.STARTING, _S.SUSPENDED, _S.ERROR}),
    _S.STARTING: frozenset(
        {_S.ONLINE, _S.BACKOFF, _S.CRASHLOOP, _S.ERROR, _S.STOPPED, _S.SUSPENDED, _S.STARTING}
    ),
    _S.ONLINE: frozenset(
        {_S.STARTING, _S.BACKOFF, _S.CRASHLOOP, _S.ERROR, _S.STOPPED, _S.SUSPENDED}
    ),
    _S.BACKOFF: frozenset({_S.STARTING, _S.STOPPED, _S.SUSPENDED, _S.ERROR, _S.CRASHLOOP}),
    _S.CRASHLOOP: frozenset({_S.STARTING, _S.STOPPED, _S.SUSPENDED, _S.ERROR}),
    _S.ERROR: frozenset({_S.STARTING, _S.STOPPED, _S.SUSPENDED}),
    _S.SUSPENDED: frozenset({_S.STOPPED, _S.STARTING}),
}


def check_transition(current: InstanceState | None, new: InstanceState) -> InstanceState:
    """Return `new` when the table allows `current -> new`; raise `IllegalTransition` otherwise."""
    if current is None:
        return new
    if new not in TRANSITIONS[current]:
        raise IllegalTransition("instance", current, new)
    return new
