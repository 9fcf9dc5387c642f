"""`python -m worker --instance ID`: run one tenant bot in this process (the orchestrator
forks workers from its zygote instead; this entry is for debugging and benchmarks)."""

from __future__ import annotations

import argparse

from core.tuning import tuning_path
from worker.main import detach, run_instance


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m worker")
    parser.add_argument("--instance", type=int, required=True)
    parser.add_argument("--detach", action="store_true", help="own session, stdio to logs")
    args = parser.parse_args()
    if args.detach:
        detach(args.instance, tuning_path("LOG_DIR", "logs"))
    raise SystemExit(run_instance(args.instance))


if __name__ == "__main__":
    main()
