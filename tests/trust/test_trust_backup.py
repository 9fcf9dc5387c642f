"""Issue 13 item 4: a backup carries no keys unless asked, and then only encrypted.

Someone who reads an archive on a backup disk must not get `data/secrets.env` (the Fernet keys
that decrypt the bot tokens and stock in the same archive, the admin token, the session and
webhook secrets). Archives are 0600 in a 0700 folder whatever the umask.
"""

from __future__ import annotations

import gzip
import os
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from core.db import close_db, init_db
from core.secrets_store import GENERATED_SECRETS, load_or_create_secrets
from core.vault import TokenVault, generate_key
from fleet.models import BotInstance
from shop.models import Account, Tenant
from tests.ops.test_backup import restore_target  # noqa: F401

VITRINE = str(Path(sys.executable).parent / "vitrine")
BOT_TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe.bot-token-of-the-seller-0123456789"
PASSPHRASE = "correct horse battery staple"


def cli(*args: str, env: dict, cwd: Path | None = None) -> subprocess.CompletedProcess:
    # umask 0: the archive and its folder must be private because we say so, not by luck.
    return subprocess.run(
        [VITRINE, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        umask=0,
        stdin=subprocess.DEVNULL,
    )


def env_for(root: Path, database_url: str, **extra: str) -> dict:
    """The embedded default: no secret in the environment, so they live in data/secrets.env."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in GENERATED_SECRETS and not k.startswith("VITRINE_BACKUP")
    }
    env.update(
        DATA_DIR=str(root / "data"), LOG_DIR=str(root / "logs"), DATABASE_URL=database_url, **extra
    )
    return env


async def seed_bot(data_dir: Path) -> dict[str, str]:
    """A store whose bot token is encrypted with the generated key; returns the secrets."""
    values = load_or_create_secrets(data_dir, list(GENERATED_SECRETS))
    vault = TokenVault(values["TOKEN_ENCRYPTION_KEYS"].split(","))
    owner = await Account.create(discord_id="100000000000000001", username="seller")
    tenant = await Tenant.create(owner=owner, name="Loja")
    await BotInstance.create(tenant=tenant, name="bot", token_enc=vault.encrypt(BOT_TOKEN))
    return values


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def archive_bytes(archive: Path) -> bytes:
    """Everything a reader of the archive file sees (decompressed when it is a plain tar.gz)."""
    raw = archive.read_bytes()
    return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw


async def test_default_backup_leaves_secrets_out_says_so_and_is_private(sqlite_db, tmp_path):
    source = tmp_path / "source"
    secrets = await seed_bot(source / "data")
    env = env_for(source, sqlite_db)
    result = cli("backup", env=env, cwd=tmp_path)  # default place: backups/
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "backups"
    (archive,) = folder.iterdir()
    assert mode(folder) == 0o700 and mode(archive) == 0o600
    assert "secrets.env" in result.stdout and "TOKEN_ENCRYPTION_KEYS" in result.stdout
    with tarfile.open(archive) as tar:
        assert not [n for n in tar.getnames() if "secrets" in n]
    content = archive_bytes(archive)
    for name, value in secrets.items():
        if name in GENERATED_SECRETS:  # not the recorded MERCADOPAGO_API=orders
            assert value.encode() not in content, name
    # An explicit --to in a folder that does not exist yet: same rules.
    deep = tmp_path / "new" / "weekly.tar.gz"
    assert cli("backup", "--to", str(deep), env=env).returncode == 0
    assert mode(deep.parent) == 0o700 and mode(deep) == 0o600


async def test_backup_with_secrets_is_encrypted_and_restores_with_the_passphrase(
    database_url, restore_target, tmp_path
):  # noqa: F811
    source = tmp_path / "source"
    await init_db(database_url)
    try:
        secrets = await seed_bot(source / "data")
    finally:
        await close_db()
    env = env_for(source, database_url, VITRINE_BACKUP_PASSPHRASE=PASSPHRASE)
    archive = tmp_path / "out" / "with-keys.vbk"
    result = cli("backup", "--with-secrets", "--to", str(archive), env=env)
    assert result.returncode == 0, result.stderr
    assert mode(archive) == 0o600 and "encrypted" in result.stdout
    content = archive.read_bytes()
    assert content[:2] != b"\x1f\x8b"  # not a readable tar.gz
    for name, value in secrets.items():
        assert value.encode() not in content, name
    assert b"secrets.env" not in content and b"manifest" not in content

    # A new machine: nothing but the archive and the passphrase.
    target = tmp_path / "restored"
    pass_file = tmp_path / "pass.txt"
    pass_file.write_text(PASSPHRASE + "\n")
    env2 = env_for(target, restore_target)
    result = cli(
        "restore",
        str(archive),
        "--passphrase-file",
        str(pass_file),
        "--config",
        str(tmp_path / "none.conf"),
        env=env2,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verified" in result.stdout and "cannot decrypt" not in result.stdout
    restored_secrets = target / "data" / "secrets.env"
    assert mode(restored_secrets) == 0o600
    restored = load_or_create_secrets(target / "data", list(GENERATED_SECRETS))
    assert restored == secrets
    await init_db(restore_target)
    try:
        bot = await BotInstance.get(name="bot")
    finally:
        await close_db()
    keys = restored["TOKEN_ENCRYPTION_KEYS"].split(",")
    assert TokenVault(keys).decrypt(bot.token_enc).reveal() == BOT_TOKEN


async def test_wrong_or_missing_passphrase_restores_nothing_with_one_clear_line(
    sqlite_db, tmp_path
):
    source = tmp_path / "source"
    await seed_bot(source / "data")
    (source / "logs").mkdir(parents=True)
    (source / "logs" / "portal.log").write_text("{}\n")
    key_file = tmp_path / "backup.key"
    key_file.write_text(generate_key() + "\n")  # what `vitrine gen-key > FILE` writes
    archive = tmp_path / "b.vbk"
    result = cli(
        "backup",
        "--with-secrets",
        "--key-file",
        str(key_file),
        "--to",
        str(archive),
        env=env_for(source, sqlite_db),
    )
    assert result.returncode == 0, result.stderr

    target = tmp_path / "target"
    target_db = target / "data" / "vitrine.sqlite3"
    env2 = env_for(target, f"sqlite://{target_db}")
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("not the passphrase at all\n")
    tampered = tmp_path / "tampered.vbk"
    raw = bytearray(archive.read_bytes())
    raw[-40] ^= 1
    tampered.write_bytes(bytes(raw))
    truncated = tmp_path / "truncated.vbk"
    truncated.write_bytes(archive.read_bytes()[:-100])
    attempts = [
        (archive, ("--passphrase-file", str(wrong)), "wrong passphrase or key file"),
        (tampered, ("--key-file", str(key_file)), "damaged"),
        (truncated, ("--key-file", str(key_file)), "damaged"),
        (archive, (), "encrypted"),  # no terminal to ask on, nothing given
    ]
    for path, extra, message in attempts:
        result = cli(
            "restore", str(path), *extra, "--config", str(tmp_path / "none.conf"), env=env2
        )
        assert result.returncode == 1, (path, extra, result.stdout)
        assert result.stderr.startswith("error:") and message in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
        assert not target_db.exists() and not (target / "logs" / "portal.log").exists()
    result = cli(
        "restore",
        str(archive),
        "--key-file",
        str(key_file),
        "--config",
        str(tmp_path / "none.conf"),
        env=env2,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert target_db.exists() and (target / "logs" / "portal.log").exists()


async def test_restore_without_the_keys_says_tokens_cannot_be_decrypted(sqlite_db, tmp_path):
    source = tmp_path / "source"
    await seed_bot(source / "data")
    archive = tmp_path / "plain.tar.gz"
    assert cli("backup", "--to", str(archive), env=env_for(source, sqlite_db)).returncode == 0
    target = tmp_path / "target"  # a new machine: new keys get generated, not the old ones
    result = cli(
        "restore",
        str(archive),
        "--config",
        str(tmp_path / "none.conf"),
        env=env_for(target, f"sqlite://{target / 'data' / 'vitrine.sqlite3'}"),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "cannot decrypt" in result.stdout and "TOKEN_ENCRYPTION_KEYS" in result.stdout


def test_encrypted_backup_passphrase_is_asked_twice_when_interactive(monkeypatch):
    from ops import backup_crypto

    answers = iter([PASSPHRASE, PASSPHRASE + "x", PASSPHRASE, PASSPHRASE])
    monkeypatch.setattr(backup_crypto.getpass, "getpass", lambda prompt="": next(answers))
    with pytest.raises(backup_crypto.BackupError, match="do not match"):
        backup_crypto.obtain_secret(None, None, {}, interactive=True, confirm=True)
    assert (
        backup_crypto.obtain_secret(None, None, {}, interactive=True, confirm=True)
        == PASSPHRASE.encode()
    )
    with pytest.raises(backup_crypto.BackupError, match="at least"):
        backup_crypto.obtain_secret(
            None, None, {"VITRINE_BACKUP_PASSPHRASE": "short"}, interactive=False, confirm=True
        )


def test_docker_image_runs_in_production_unless_told_otherwise():
    root = Path(__file__).resolve().parents[2]
    env = {}
    for line in (root / "Dockerfile").read_text().replace("\\\n", " ").splitlines():
        if line.startswith("ENV "):
            env.update(pair.split("=", 1) for pair in line[4:].split())
    assert env.get("VITRINE_ENV") == "production"
