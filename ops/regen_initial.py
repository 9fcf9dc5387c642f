"""Regenerate the single initial migration from the current models (pre-release only).

Until the first release no database exists that must be migrated step by step, so model
changes are folded into `0_*_init.py`. After the first release use `vitrine makemigration`.
Serialised with a lock file so concurrent runs do not interleave.
"""

from __future__ import annotations

import asyncio
import fcntl
import sys
import tempfile
from pathlib import Path

from ops.migrations import APP, MIGRATIONS_DIR, make_migration

PG = "postgres://postgres@127.0.0.1:5432/postgres"


def main() -> None:
    with open(Path(tempfile.gettempdir()) / "vitrine-regen-initial.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for path in (MIGRATIONS_DIR / APP).glob("*.py"):
            path.unlink()
        target = asyncio.run(make_migration("init", sys.argv[1] if len(sys.argv) > 1 else PG))
        print(f"wrote {target}")


if __name__ == "__main__":
    main()
