"""`python -m orchestrator`: the fleet daemon (run by supervisord).
`python -m orchestrator stop-all`: stop every bot worker of this node cleanly."""

import argparse
import asyncio
import os
import sys

from core.bootstrap import start_service
from fleet.exitcodes import ExitCode
from orchestrator.daemon import check_tuning, node_name, run


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m orchestrator")
    sub = parser.add_subparsers(dest="command")
    stop = sub.add_parser("stop-all", help="stop every worker of this node cleanly")
    stop.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args()
    if args.command == "stop-all":
        from orchestrator.stop_all import stop_all

        settings = start_service("orchestrator-cli", stderr=False)
        print(asyncio.run(stop_all(settings, node_name(), args.timeout)), flush=True)
        return
    settings = start_service("orchestrator")
    try:
        check_tuning(os.environ)
    except ValueError as exc:
        print(f"configuration error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(ExitCode.CONFIG) from None
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
