"""Root errors shared by every process."""


class VitrineError(Exception):
    """Root of every error Vitrine raises on purpose."""


class ConfigError(VitrineError):
    """A setting is missing or malformed; the process must not start."""

    def __init__(self, var: str, problem: str, example: str) -> None:
        self.var = var
        self.problem = problem
        self.example = example
        super().__init__(f"{var}: {problem} (example: {var}={example})")

    def one_line(self) -> str:
        """The single line printed before exiting."""
        return f"configuration error: {self}"


class IllegalTransition(VitrineError, ValueError):
    """A state change that a transition table does not allow (instances, orders, payments,
    withdrawals: `fleet.states` and `shop.states` hold the tables)."""

    def __init__(self, kind: str, current: str, new: str) -> None:
        super().__init__(f"illegal {kind} transition {current} -> {new}")
        self.kind = kind
        self.current = current
        self.new = new
