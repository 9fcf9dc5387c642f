"""Worker exit codes as the fleet sees them: `ExitCode` (defined in `core.exitcodes`, so the
start-up code of every process uses the same 78) and the Discord close codes that mean a
configuration error."""

from core.exitcodes import ExitCode

__all__ = ["CONFIG_CLOSE_CODES", "ExitCode"]

CONFIG_CLOSE_CODES = frozenset({4004, 4010, 4011, 4012, 4013, 4014})
