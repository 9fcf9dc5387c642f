"""Schema migrations with aerich, one set of files for SQLite and PostgreSQL.

aerich writes SQL for the dialect it was run against. `make_migration` runs it against a scratch
SQLite database and a scratch PostgreSQL database and merges both outputs into one file whose
`upgrade(db)` picks the SQL by `db.capabilities.dialect`; `apply` runs pending files; `pending`
reports model changes that no migration covers (a test keeps it empty).
"""

from __future__ import annotations

import asyncio
import importlib.util
import shutil
import sys
import tempfile
from pathlib import Path
from types import ModuleType

from aerich import Command
from aerich.migrate import Migrate

from core.db import tortoise_config

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
APP = "models"


def _command(database_url: str, location: Path) -> Command:
    cmd = Command(tortoise_config(database_url), app=APP, location=str(location))
    cmd._init_when_aenter = False  # as aerich's own CLI does: init explicitly below
    return cmd


async def apply(database_url: str, location: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply every pending migration; return the names applied."""
    async with _command(database_url, location) as cmd:
        await cmd.init()
        return await cmd.upgrade(run_in_transaction=True)


async def pending(location: Path = MIGRATIONS_DIR) -> str:
    """The SQL-free summary of model changes not yet in a migration ('' when in sync)."""
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "migrations"
        shutil.copytree(location, copy)
        async with _command("sqlite://:memory:", copy) as cmd:
            await cmd.init(offline=True)
            created = await Migrate.migrate("check", empty=False, no_input=True, offline=True)
        if not created:
            return ""
        return "\n".join(p.name for p in (copy / APP).glob(f"*{created}*")) or created


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def _generate(database_url: str, location: Path, name: str) -> Path | None:
    async with _command(database_url, location) as cmd:
        if not any((location / APP).glob("*.py")):
            await cmd.init_db(safe=True)
            return next((location / APP).glob("0_*.py"))
        await cmd.init()
        await cmd.upgrade(run_in_transaction=True)
        created = await cmd.migrate(name, no_input=True)
    if not created:
        return None
    return next((location / APP).glob(f"*{created}*"))


async def _generate_in_child(database_url: str, location: Path, name: str) -> Path | None:
    # tortoise caches compiled SQL per model class, so each dialect gets a fresh interpreter.
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ops.migrations",
        database_url,
        str(location),
        name,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"aerich failed for {database_url.split(':')[0]}")
    path = out.decode().strip().splitlines()[-1] if out.strip() else ""
    return Path(path) if path and path != "-" else None


async def make_migration(name: str, postgres_admin_url: str) -> Path | None:
    """Write a new dialect-merged migration for the current models; None when nothing changed.

    `postgres_admin_url` must allow CREATE DATABASE (a scratch database is made and dropped).
    """
    import asyncpg

    scratch_db = "vitrine_makemigration"
    admin = await asyncpg.connect(postgres_admin_url)
    await admin.execute(f'DROP DATABASE IF EXISTS "{scratch_db}"')
    await admin.execute(f'CREATE DATABASE "{scratch_db}"')
    try:
        outputs: dict[str, Path | None] = {}
        with tempfile.TemporaryDirectory() as scratch:
            for dialect, url in (
                ("sqlite", f"sqlite://{scratch}/scratch.sqlite3"),
                ("postgres", postgres_admin_url.rsplit("/", 1)[0] + f"/{scratch_db}"),
            ):
                location = Path(scratch) / dialect
                shutil.copytree(MIGRATIONS_DIR, location)
                generated = await _generate_in_child(url, location, name)
                if generated is not None:
                    keep = Path(scratch) / f"{dialect}.py"
                    shutil.copy(generated, keep)
                    outputs[dialect] = keep
                    final_name = generated.name
                else:
                    outputs[dialect] = None
            if outputs["sqlite"] is None or outputs["postgres"] is None:
                return None
            (MIGRATIONS_DIR / APP).mkdir(parents=True, exist_ok=True)
            target = MIGRATIONS_DIR / APP / final_name
            target.write_text(await _merge(outputs["sqlite"], outputs["postgres"]))
            return target
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{scratch_db}" WITH (FORCE)')
        await admin.close()


async def _merge(sqlite_file: Path, postgres_file: Path) -> str:
    lite, pg = _load(sqlite_file), _load(postgres_file)
    sql = {
        "sqlite": (await lite.upgrade(None), await lite.downgrade(None)),
        "postgres": (await pg.upgrade(None), await pg.downgrade(None)),
    }
    body = "".join(
        f"_{dialect.upper()}_{step} = {_literal(text)}\n\n"
        for dialect, pair in sql.items()
        for step, text in zip(("UP", "DOWN"), pair, strict=True)
    )
    return (
        '"""Generated by `vitrine makemigration`: SQL for SQLite and PostgreSQL."""\n\n'
        "from tortoise import BaseDBAsyncClient\n\n"
        f"RUN_IN_TRANSACTION = {getattr(lite, 'RUN_IN_TRANSACTION', True)!r}\n\n"
        f"{body}"
        "_SQL = {\n"
        '    "sqlite": (_SQLITE_UP, _SQLITE_DOWN),\n'
        '    "postgres": (_POSTGRES_UP, _POSTGRES_DOWN),\n'
        "}\n\n\n"
        "async def upgrade(db: BaseDBAsyncClient) -> str:\n"
        "    return _SQL[db.capabilities.dialect][0]\n\n\n"
        "async def downgrade(db: BaseDBAsyncClient) -> str:\n"
        "    return _SQL[db.capabilities.dialect][1]\n\n\n"
        f"MODELS_STATE = {lite.MODELS_STATE!r}\n"
    )


def _literal(text: str) -> str:
    """A readable triple-quoted literal when safe, repr() otherwise."""
    if '"""' in text or "\\" in text or text.endswith('"'):
        return repr(text)
    return '"""' + text + '"""'


if __name__ == "__main__":  # internal: one dialect's aerich run for make_migration
    _path = asyncio.run(_generate(sys.argv[1], Path(sys.argv[2]), sys.argv[3]))
    print(_path or "-")
