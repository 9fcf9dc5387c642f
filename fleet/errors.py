"""The root error of the fleet package (instances, runtime, control protocol)."""

from core.errors import VitrineError


class FleetError(VitrineError):
    """Root of every error the fleet package raises on purpose."""
