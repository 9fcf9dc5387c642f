"""Backups of a running platform and their restore.

An archive (`.tar.gz`) holds `data/` (with a consistent database snapshot taken through
SQLite's online backup API, or a `pg_dump` of PostgreSQL), `logs/`, and a manifest with the
row counts of the tables that hold money and stock, which `restore` checks after restoring.

`data/secrets.env` (the keys that decrypt the bot tokens and stock in the same archive) is left
out unless asked for; then the whole archive is encrypted (`ops.backup_crypto`). Archives are
written 0600, in a folder that is 0700 when Vitrine creates it (and always for `backups/`).

Redis is not in the archive on purpose: nothing about money lives only there. Runtime records
are rewritten by the workers, paid-but-undelivered orders are re-enqueued from the database by
the delivery sweeper, and crash history is fine to lose.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from core.db import close_db, init_db
from core.secrets_store import SECRETS_FILE
from core.settings import Settings
from ops.backup_crypto import BackupError, EncryptingWriter

FORMAT_VERSION = 1
DEFAULT_FOLDER = Path("backups")
# Files in data/ that are live process state, not business state.
SKIP_IN_DATA = {"supervisord.sock", "supervisord.pid", "secrets.env.lock", "secrets.tmp"}
SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")
COUNTED = (
    "orders",
    "payments",
    "ledger_entries",
    "stock_items",
    "product_files",
    "withdrawals",
    "accounts",
    "tenants",
    "bot_instances",
    "products",
    "variations",
)

Progress = Callable[[str], None]
__all__ = ["BackupError", "create_backup", "read_manifest", "restore_files", "table_counts"]


def _sqlite_path(settings: Settings) -> Path:
    return Path(settings.database_url[len("sqlite://") :].split("?", 1)[0])


def _pg_env(url: str) -> tuple[list[str], dict[str, str]]:
    """Connection arguments for pg_dump/pg_restore without putting the password on argv."""
    parsed = urlparse(url)
    env = {**os.environ}
    if parsed.password:
        env["PGPASSWORD"] = parsed.password
    args = [
        "-h",
        parsed.hostname or "127.0.0.1",
        "-p",
        str(parsed.port or 5432),
        "-U",
        parsed.username or "postgres",
        "-d",
        parsed.path.lstrip("/"),
    ]
    return args, env


async def table_counts(database_url: str) -> dict[str, int]:
    """Row counts of the business tables (checked after a restore)."""
    from tortoise import Tortoise

    await init_db(database_url)
    try:
        conn = Tortoise.get_connection("default")
        counts = {}
        for table in COUNTED:
            _, rows = await conn.execute_query(f'SELECT COUNT(*) AS n FROM "{table}"')  # noqa: S608
            counts[table] = int(dict(rows[0])["n"])
        return counts
    finally:
        await close_db()


def _snapshot_database(settings: Settings, staging: Path, progress: Progress) -> str:
    if settings.is_sqlite:
        source = _sqlite_path(settings)
        if not source.exists():
            raise BackupError(f"database file {source} not found: run `vitrine migrate` first")
        target = staging / "data" / source.name
        progress(f"snapshot of {source} (SQLite online backup)")
        with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
            src.backup(dst)  # one step: a concurrent writer cannot force a restart
        return "sqlite"
    if shutil.which("pg_dump") is None:
        raise BackupError("pg_dump not found: apt-get install postgresql-client")
    progress("pg_dump of the PostgreSQL database")
    asyncio.run(_pg_dump_with_counts(settings.database_url, staging))
    return "postgres"


async def _pg_dump_with_counts(url: str, staging: Path) -> None:
    """pg_dump and the manifest counts from one exported snapshot, so they agree."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            snapshot = await conn.fetchval("SELECT pg_export_snapshot()")
            counts = {
                t: await conn.fetchval(f'SELECT COUNT(*) FROM "{t}"')  # noqa: S608
                for t in COUNTED
            }
            args, env = _pg_env(url)
            proc = await asyncio.create_subprocess_exec(
                "pg_dump",
                "-Fc",
                "--no-owner",
                f"--snapshot={snapshot}",
                "-f",
                str(staging / "db.dump"),
                *args,
                env=env,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            _, err = await proc.communicate()
            if proc.returncode != 0:
                raise BackupError(f"pg_dump failed: {err.decode().strip()[-300:]}")
    finally:
        await conn.close()
    (staging / "counts.json").write_text(json.dumps(counts))


def _copy_tree(source: Path, target: Path, skip: set[str]) -> int:
    copied = 0
    if not source.exists():
        return 0
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source)
        if path.is_dir() or rel.name in skip or rel.parts[0] in skip:
            continue
        dest = target / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copy2(path, dest)
            copied += 1
        except FileNotFoundError:  # rotated away while we copied
            continue
    return copied


def _private_folder(folder: Path) -> None:
    """0700 when we create it (and for our own `backups/`); an existing folder of the
    operator's keeps its mode (it may be shared, like /tmp): the archive itself is 0600."""
    if not folder.exists():
        folder.mkdir(parents=True, mode=0o700)
        os.chmod(folder, 0o700)  # mkdir's mode is filtered by the umask
    elif folder.resolve() == DEFAULT_FOLDER.resolve():
        os.chmod(folder, 0o700)


def _write_archive(staging: Path, to: Path, secret: tuple[bytes, str] | None) -> None:
    """Write the archive 0600 under a temporary name, then move it into place."""
    partial = to.with_name(f".{to.name}.{os.getpid()}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as out:
            sink: Any = EncryptingWriter(out, *secret) if secret else out
            with tarfile.open(fileobj=sink, mode="w|gz") as tar:
                for name in ("manifest.json", "data", "logs", "db.dump"):
                    if (staging / name).exists():
                        tar.add(staging / name, arcname=name)
            if secret:
                sink.close()
        os.replace(partial, to)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def create_backup(
    settings: Settings,
    to: Path | None = None,
    progress: Progress = lambda _: None,
    secret: tuple[bytes, str] | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Write a backup archive of the running platform; return its path and manifest.

    Without `secret` the archive leaves `data/secrets.env` out; with `(secret bytes, "passphrase"
    or "key-file")` it keeps it and the whole archive is encrypted.
    """
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    suffix = ".tar.gz.enc" if secret else ".tar.gz"
    to = to or DEFAULT_FOLDER / f"vitrine-{stamp}{suffix}"
    _private_folder(to.parent)
    with tempfile.TemporaryDirectory(prefix="vitrine-backup-") as tmp:
        staging = Path(tmp)
        (staging / "data").mkdir()
        skip = set(SKIP_IN_DATA) | {"redis"}
        if not secret:
            skip.add(SECRETS_FILE)
        if settings.is_sqlite:
            skip |= {_sqlite_path(settings).name + s for s in SQLITE_SUFFIXES}
        kind = _snapshot_database(settings, staging, progress)
        progress(f"copying {settings.data_dir}/ and {settings.log_dir}/")
        files = _copy_tree(settings.data_dir, staging / "data", skip)
        files += _copy_tree(settings.log_dir, staging / "logs", set())
        if kind == "sqlite":
            counts = asyncio.run(
                table_counts(f"sqlite://{staging / 'data' / _sqlite_path(settings).name}")
            )
        else:
            counts = json.loads((staging / "counts.json").read_text())
        manifest = {
            "format": FORMAT_VERSION,
            "created_at": stamp,
            "database": kind,
            "files": files,
            "counts": counts,
            "encrypted": bool(secret),
            "secrets": (staging / "data" / SECRETS_FILE).exists(),
        }
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2))
        progress(f"writing {to}" + (" (encrypted)" if secret else ""))
        _write_archive(staging, to, secret)
    return to, manifest


def read_manifest(archive: Path) -> dict[str, Any]:
    try:
        with tarfile.open(archive, "r:gz") as tar:
            member = tar.extractfile("manifest.json")
            if member is None:
                raise KeyError("manifest.json")
            return json.loads(member.read())
    except (OSError, KeyError, tarfile.TarError, json.JSONDecodeError) as exc:
        raise BackupError(f"{archive} is not a Vitrine backup ({exc})") from None


def restore_files(settings: Settings, archive: Path, progress: Progress = lambda _: None) -> dict:
    """Put the archive's data/, logs/ and database in place (services must be stopped)."""
    manifest = read_manifest(archive)
    if manifest["database"] == "sqlite" and not settings.is_sqlite:
        raise BackupError("this backup is of a SQLite database but DATABASE_URL is PostgreSQL")
    if manifest["database"] == "postgres" and settings.is_sqlite:
        raise BackupError("this backup is of PostgreSQL but DATABASE_URL is SQLite")
    with tempfile.TemporaryDirectory(prefix="vitrine-restore-") as tmp:
        staging = Path(tmp)
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(staging, filter="data")
        if settings.is_sqlite:
            target = _sqlite_path(settings)
            for suffix in SQLITE_SUFFIXES:
                Path(str(target) + suffix).unlink(missing_ok=True)
        progress(f"restoring {settings.data_dir}/ and {settings.log_dir}/")
        _copy_tree(staging / "data", settings.data_dir, set())
        if (staging / "data" / SECRETS_FILE).exists():
            os.chmod(settings.data_dir / SECRETS_FILE, 0o600)
            progress(f"restored {settings.data_dir / SECRETS_FILE} (the keys of this backup)")
        _copy_tree(staging / "logs", settings.log_dir, set())
        if manifest["database"] == "postgres":
            _pg_restore(settings, staging / "db.dump", progress)
    return manifest


def _pg_restore(settings: Settings, dump: Path, progress: Progress) -> None:
    if shutil.which("pg_restore") is None:
        raise BackupError("pg_restore not found: apt-get install postgresql-client")
    args, env = _pg_env(settings.database_url)
    progress("pg_restore into the PostgreSQL database")
    proc = subprocess.run(
        ["pg_restore", "--clean", "--if-exists", "--no-owner", *args, str(dump)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise BackupError(f"pg_restore failed: {proc.stderr.strip().splitlines()[-1:]}")
