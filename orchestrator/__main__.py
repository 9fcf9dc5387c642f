"""`python -m orchestrator`: the fleet daemon (run by supervisord)."""

import asyncio

from core.bootstrap import start_service
from orchestrator.daemon import run


def main() -> None:
    settings = start_service("orchestrator")
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
