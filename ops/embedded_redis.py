"""`python -m ops.embedded_redis`: run the embedded redis-server when REDIS_URL is the
embedded default; otherwise exit 0 at once (production uses a managed Redis)."""

from __future__ import annotations

import os
import shutil
import sys

from core.bootstrap import load_settings_or_exit
from core.settings import EMBEDDED_REDIS_PORT


def main() -> None:
    settings = load_settings_or_exit()
    if not settings.embedded_redis:
        print("REDIS_URL is external; the embedded redis-server is not needed", flush=True)
        raise SystemExit(0)
    binary = shutil.which("redis-server")
    if binary is None:
        print("redis-server is not installed: apt-get install redis-server", file=sys.stderr)
        raise SystemExit(78)
    redis_dir = settings.data_dir.resolve() / "redis"
    redis_dir.mkdir(parents=True, exist_ok=True)
    os.execv(
        binary,
        [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(EMBEDDED_REDIS_PORT),
            "--dir",
            str(redis_dir),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--protected-mode",
            "yes",
            "--daemonize",
            "no",
        ],
    )


if __name__ == "__main__":
    main()
