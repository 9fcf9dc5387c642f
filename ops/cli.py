"""The `vitrine` command. Errors are one clear line and a non-zero exit."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from core.bootstrap import load_settings_or_exit
from core.errors import ConfigError
from core.exitcodes import ExitCode
from core.settings import Settings
from ops import cli_accounts, cli_audit, cli_money, cli_ratings, opscmds
from ops.cli_args import seconds_arg
from ops.errors import CliError

ROOT = Path(__file__).resolve().parent.parent
__all__ = ["CliError", "main", "build_parser"]


def _prepare_dirs(settings: Settings) -> None:
    for path in (settings.data_dir, settings.log_dir, settings.log_dir / "instances"):
        path.mkdir(parents=True, exist_ok=True)


def cmd_migrate(args: argparse.Namespace) -> int:
    """Apply pending database migrations."""
    from ops.migrations import apply

    settings = load_settings_or_exit()
    _prepare_dirs(settings)
    target = settings.database_url.split("@")[-1]
    print(f"applying migrations to {target} ...", flush=True)
    applied = asyncio.run(apply(settings.database_url))
    for name in applied:
        print(f"  applied {name}")
    print(f"done: {len(applied)} migration(s) applied" if applied else "done: already up to date")
    return 0


def cmd_makemigration(args: argparse.Namespace) -> int:
    """Write a new migration (SQLite + PostgreSQL) for model changes."""
    from ops.migrations import make_migration

    path = asyncio.run(make_migration(args.name, args.postgres))
    print(f"wrote {path.relative_to(ROOT)}" if path else "no model changes: nothing written")
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    """Load the settings exactly as the services do, and print them (secrets hidden)."""
    settings = load_settings_or_exit()
    print(repr(settings))
    return 0


def cmd_gen_key(args: argparse.Namespace) -> int:
    """Print a new Fernet key for TOKEN_ENCRYPTION_KEYS."""
    from core.vault import generate_key

    print(generate_key())
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Migrate, then run supervisord in the foreground with every service."""
    settings = load_settings_or_exit()
    _prepare_dirs(settings)
    if settings.embedded_redis and shutil.which("redis-server") is None:
        raise CliError(
            "redis-server is not installed (Debian: apt-get install redis-server), "
            "or set REDIS_URL to an existing Redis"
        )
    if cmd_migrate(args) != 0:
        return 1
    conf = Path(args.config).resolve() if args.config else _default_conf()
    for sub in ("data", "logs"):
        (conf.parent / sub).mkdir(exist_ok=True)
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    supervisord = Path(sys.executable).parent / "supervisord"
    binary = str(supervisord) if supervisord.exists() else "supervisord"
    print(
        f"starting supervisord ({conf.name}): portal :{settings.portal_port}, "
        f"admin {settings.admin_bind}:{settings.admin_port}, orchestrator",
        flush=True,
    )
    os.execvpe(binary, [binary, "-n", "-c", str(conf)], env)
    return 0  # not reached


def _default_conf() -> Path:
    local = Path.cwd() / "supervisord.conf"
    return local if local.is_file() else ROOT / "supervisord.conf"


def cmd_rotate_token_key(args: argparse.Namespace) -> int:
    """Re-encrypt every stored secret (bot tokens, stock, shared contents, product files,
    fulfilment notes) under the newest key."""
    from ops.keyrotation import rotate_all

    settings = load_settings_or_exit()
    counts = asyncio.run(rotate_all(settings, progress=lambda msg: print(msg, flush=True)))
    print("done: " + ", ".join(f"{n} {what} re-encrypted" for what, n in counts.items()))
    return 0


def _backup_secret(args: argparse.Namespace, confirm: bool) -> bytes:
    from ops.backup_crypto import obtain_secret

    return obtain_secret(
        args.passphrase_file,
        args.key_file,
        os.environ,
        interactive=sys.stdin.isatty(),
        confirm=confirm,
    )


def cmd_backup(args: argparse.Namespace) -> int:
    """Archive data/ (with a consistent database snapshot) and logs/; keys only encrypted."""
    from ops.backup import BackupError, create_backup

    if (args.passphrase_file or args.key_file) and not args.with_secrets:
        raise CliError(
            "--passphrase-file and --key-file encrypt a --with-secrets backup: add --with-secrets"
        )
    settings = load_settings_or_exit()
    try:
        secret = None
        if args.with_secrets:
            secret = (
                _backup_secret(args, confirm=True),
                "key-file" if args.key_file else "passphrase",
            )
        path, manifest = create_backup(
            settings,
            Path(args.to) if args.to else None,
            progress=lambda msg: print(msg, flush=True),
            secret=secret,
        )
    except BackupError as exc:
        raise CliError(str(exc)) from None
    counts = manifest["counts"]
    print(
        f"backup written: {path} ({path.stat().st_size // 1024} KiB; "
        f"{counts['orders']} orders, {counts['payments']} payments, "
        f"{counts['ledger_entries']} ledger entries, {counts['stock_items']} stock items)"
    )
    if secret and manifest["secrets"]:
        print(
            "encrypted, with data/secrets.env inside: `vitrine restore` asks for the same "
            "passphrase or key file; without it this archive cannot be read"
        )
    elif secret:
        print(
            "encrypted; there is no data/secrets.env here (the secrets come from the "
            "environment or .env): keep TOKEN_ENCRYPTION_KEYS safe apart from the backups"
        )
    else:
        print(
            "data/secrets.env was left out: this archive holds no keys. Keep "
            "TOKEN_ENCRYPTION_KEYS (and the rest of data/secrets.env) safe apart from the "
            "backups: without them the bot tokens and stock in it cannot be decrypted. "
            "`vitrine backup --with-secrets` writes an encrypted archive that carries them"
        )
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    """Stop the services, restore an archive, migrate, verify, start, health-check."""
    from ops.backup import BackupError
    from ops.backup_crypto import is_encrypted
    from ops.restore import restore

    settings = load_settings_or_exit()
    conf = Path(args.config).resolve() if args.config else _default_conf()
    try:
        secret = _backup_secret(args, confirm=False) if is_encrypted(Path(args.file)) else None
        return restore(
            settings, Path(args.file), conf, progress=lambda m: print(m, flush=True), secret=secret
        )
    except BackupError as exc:
        raise CliError(str(exc)) from None


def cmd_create_admin(args: argparse.Namespace) -> int:
    """Give a Discord user the admin role (created if they never logged in)."""
    from ops.accounts import make_admin

    if (
        not (args.discord_id.isascii() and args.discord_id.isdigit())
        or not 15 <= len(args.discord_id) <= 21
    ):
        raise CliError(f"{args.discord_id!r} is not a Discord user id (a 17-20 digit number)")
    settings = load_settings_or_exit()
    created = asyncio.run(make_admin(settings.database_url, args.discord_id))
    print(
        f"{'created' if created else 'promoted'} admin account for Discord user {args.discord_id}"
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """`vitrine demo` (sandbox + platform + seeded store) and `vitrine demo buy`."""
    from ops import demo

    return demo.cmd_demo(args)


def cmd_fleet(args: argparse.Namespace) -> int:
    """`vitrine fleet stop`: stop every bot worker of this node cleanly."""
    from orchestrator.daemon import node_name
    from orchestrator.stop_all import stop_all

    settings = load_settings_or_exit()
    print(f"stopping every bot worker of node {node_name()} ...", flush=True)
    print(asyncio.run(stop_all(settings, node_name(), args.timeout)), flush=True)
    return 0


COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int], str]] = {
    "run": (cmd_run, "run the whole platform in the foreground (supervisord)"),
    **opscmds.COMMANDS,
    # Operator actions (each module's add_arguments adds its options); `withdrawals` keeps
    # its place in the list above and gains approve|complete|reject from cli_money.
    **cli_money.COMMANDS,
    **cli_accounts.COMMANDS,
    **cli_audit.COMMANDS,
    **cli_ratings.COMMANDS,
    "demo": (
        cmd_demo,
        "the whole platform on the offline sandbox with a seeded store; "
        "`vitrine demo buy` runs a purchase",
    ),
    "migrate": (cmd_migrate, "apply pending database migrations"),
    "makemigration": (cmd_makemigration, "generate a migration for model changes (developers)"),
    "check-config": (cmd_check_config, "validate the configuration and print it"),
    "backup": (cmd_backup, "archive data/ and logs/ with a consistent database snapshot"),
    "restore": (cmd_restore, "restore a backup archive (stops and restarts the services)"),
    "fleet": (cmd_fleet, "fleet-wide actions: `vitrine fleet stop` stops every bot worker"),
    "create-admin": (cmd_create_admin, "give a Discord user the operator (admin) role"),
    "gen-key": (cmd_gen_key, "print a new token encryption key"),
    "rotate-token-key": (
        cmd_rotate_token_key,
        "re-encrypt stored tokens under the first TOKEN_ENCRYPTION_KEYS key",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vitrine", description="Vitrine operations")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (func, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        opscmds.add_arguments(name, p)
        for module in (cli_money, cli_accounts, cli_audit, cli_ratings):
            module.add_arguments(name, p)
        if name == "run":
            p.add_argument(
                "--config",
                help="supervisord.conf to use (default: ./supervisord.conf "
                "or the one shipped with Vitrine)",
            )
        if name == "demo":
            from ops.demo import add_arguments

            add_arguments(p)
        if name == "fleet":
            p.add_argument("action", choices=["stop"], help="stop: stop every worker cleanly")
            p.add_argument("--timeout", type=seconds_arg, default=30.0)
        if name == "create-admin":
            p.add_argument("discord_id", help="the user's Discord id")
        if name == "backup":
            p.add_argument(
                "--to",
                help="archive path (default backups/vitrine-<UTC time>.tar.gz"
                ", .tar.gz.enc with --with-secrets)",
            )
            p.add_argument(
                "--with-secrets",
                action="store_true",
                help="keep data/secrets.env, encrypting the whole archive with a "
                "passphrase (asked, or --passphrase-file, or "
                "VITRINE_BACKUP_PASSPHRASE) or --key-file",
            )
        if name == "restore":
            p.add_argument("file", help="an archive written by `vitrine backup`")
            p.add_argument("--config", help="supervisord.conf of the running platform")
        if name in ("backup", "restore"):
            p.add_argument(
                "--passphrase-file",
                metavar="FILE",
                help="encrypted archive: the passphrase is this file's first line",
            )
            p.add_argument(
                "--key-file",
                metavar="FILE",
                help="encrypted archive: this file is the key (vitrine gen-key > FILE)",
            )
        if name == "makemigration":
            p.add_argument("name", help="short name, e.g. add_coupon_limits")
            p.add_argument(
                "--postgres",
                default="postgres://postgres@127.0.0.1:5432/postgres",
                help="a PostgreSQL URL allowed to CREATE DATABASE (scratch db)",
            )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return int(getattr(exc, "exit_code", 1))  # 2 usage, 3 admin unreachable
    except ConfigError as exc:  # a tuning knob read by the command itself
        print(exc.one_line(), file=sys.stderr)
        return ExitCode.CONFIG
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else ExitCode.CONFIG
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        print(
            f"error: {exc.strerror or exc}: {getattr(exc, 'filename', '') or ''}".rstrip(": "),
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
