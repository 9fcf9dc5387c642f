"""Process exit codes, shared by every entry point, the worker (which exits with them) and the
orchestrator (whose restart decision starts from them)."""

from enum import IntEnum


class ExitCode(IntEnum):
    """How a process ended; the orchestrator's restart decision starts from this."""

    CLEAN = 0  # asked to stop, stopped
    CRASH = 1  # unexpected exception
    RESTART_REQUESTED = 26  # the worker asks to be started again at once
    LEASE_LOST = 27  # another orchestrator node holds the instance's lease now: not ours
    SESSION_LIMIT = 75  # Discord session_start_limit exhausted; wait for reset_after
    CONFIG = 78  # configuration error (sysexits EX_CONFIG: a setting, token, intents): never
    # restarted automatically
