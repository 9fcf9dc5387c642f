"""Offline stand-ins for Discord and Mercado Pago, used by tests, benches and local runs.

`run_sandbox`, `RunningSandbox` and `SandboxProcess` live in `sandbox.server` (imported lazily
so that `import sandbox.mercadopago` stays light).
"""

from typing import Any

__all__ = ["RunningSandbox", "SandboxProcess", "run_sandbox"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from sandbox import server

        return getattr(server, name)
    raise AttributeError(name)
