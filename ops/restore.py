"""`vitrine restore`: stop, restore, migrate, verify, start, health-check."""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx

from core.db import close_db, init_db
from core.errors import ConfigError
from core.settings import Settings, load_settings
from ops import supervisorctl
from ops.backup import BackupError, read_manifest, restore_files, table_counts
from ops.backup_crypto import decrypt_to, is_encrypted
from ops.migrations import apply


class RestoreError(BackupError):
    pass


def _wait_healthy(settings: Settings, timeout: float = 60) -> bool:
    url = f"http://127.0.0.1:{settings.portal_port}/health"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return False


async def unreadable_secrets(database_url: str, keys: Sequence[str]) -> list[str]:
    """What the given keys cannot decrypt: the newest bot token and stock item are tried."""
    from core.vault import TokenVault, VaultError
    from fleet.models import BotInstance
    from shop.models import StockItem

    vault = TokenVault(keys)
    await init_db(database_url)
    try:
        samples = {
            "bot tokens": await BotInstance.all().order_by("-id").first(),
            "stock items": await StockItem.all().order_by("-id").first(),
        }
        unreadable = []
        for what, row in samples.items():
            if row is None:
                continue
            try:
                vault.decrypt(row.token_enc if isinstance(row, BotInstance) else row.content_enc)
            except VaultError:
                unreadable.append(what)
        return unreadable
    finally:
        await close_db()


def _keys_after_restore(settings: Settings, manifest: dict) -> tuple[str, ...]:
    """The keys the services will start with: re-read when the archive brought secrets.env."""
    if manifest.get("secrets"):
        try:
            return load_settings().token_encryption_keys
        except ConfigError:
            pass
    return settings.token_encryption_keys


def restore(
    settings: Settings,
    archive: Path,
    conf: Path,
    progress: Callable[[str], None] = print,
    secret: bytes | None = None,
) -> int:
    """Return 0 when the platform is restored (and healthy, if it was running).

    An encrypted archive is decrypted (and checked whole) before anything is stopped or
    written, so a wrong `secret` or a damaged file restores nothing.
    """
    with tempfile.TemporaryDirectory(prefix="vitrine-restore-") as tmp:  # 0700
        if is_encrypted(archive):
            if secret is None:
                raise RestoreError(
                    "this backup is encrypted: give --passphrase-file FILE, "
                    "--key-file FILE or VITRINE_BACKUP_PASSPHRASE"
                )
            progress(f"decrypting {archive}")
            plain = Path(tmp) / "backup.tar.gz"
            decrypt_to(archive, secret, plain)
            archive = plain
        return _restore(settings, archive, conf, progress)


def _restore(settings: Settings, archive: Path, conf: Path, progress: Callable[[str], None]) -> int:
    manifest = read_manifest(archive)
    progress(
        f"backup of {manifest['created_at']} ({manifest['database']}): "
        f"{manifest['counts']['orders']} orders"
    )
    running = supervisorctl.is_running(conf)
    if running:
        progress("stopping " + ", ".join(supervisorctl.SERVICES))
        supervisorctl.ctl(conf, "stop", *supervisorctl.SERVICES)
    restore_files(settings, archive, progress)
    applied = asyncio.run(apply(settings.database_url))
    progress(f"migrations: {len(applied)} applied" if applied else "migrations: up to date")
    counts = asyncio.run(table_counts(settings.database_url))
    missing = {t: (n, counts.get(t)) for t, n in manifest["counts"].items() if counts.get(t) != n}
    if missing:
        raise RestoreError(f"restored database differs from the backup: {missing}")
    progress("verified: " + ", ".join(f"{n} {t}" for t, n in counts.items() if n))
    unreadable = asyncio.run(
        unreadable_secrets(settings.database_url, _keys_after_restore(settings, manifest))
    )
    if unreadable:
        progress(
            f"WARNING: the current TOKEN_ENCRYPTION_KEYS cannot decrypt the restored "
            f"{' and '.join(unreadable)}: put back the keys this backup was made with "
            "(data/secrets.env or TOKEN_ENCRYPTION_KEYS) and restart; without them bots "
            "cannot log in and stock cannot be delivered"
        )
    if not running:
        progress("services were not running: start them with `vitrine run` (or make run)")
        return 0
    progress("starting " + ", ".join(supervisorctl.SERVICES))
    supervisorctl.ctl(conf, "start", *supervisorctl.SERVICES)
    if not _wait_healthy(settings):
        raise RestoreError(
            "restored, but the portal health check did not pass within 60 s: "
            "see logs/portal.out.log"
        )
    progress("health check passed: restore complete")
    return 0
