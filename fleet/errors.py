"""The root error of the fleet package (instances, runtime, control protocol)."""

from core.errors import VitrineError


class FleetError(VitrineError):
    """Root of every error the fleet package raises on purpose."""


class FencedOut(FleetError):
    """A write carried a fencing token smaller than one the database already saw for the
    instance: another process owns the bot now (`fleet.fencing`). The transaction is rolled
    back; the worker that gets this stops with `ExitCode.LEASE_LOST`."""

    def __init__(self, instance_id: int, token: int, seen: int) -> None:
        super().__init__(f"instance {instance_id}: fencing token {token} refused, {seen} seen")
        self.instance_id = instance_id
        self.token = token
        self.seen = seen
