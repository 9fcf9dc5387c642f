"""What the operator action commands share (`vitrine withdrawals approve|complete|reject`,
`accounts block|unblock`, `alerts ack`, `requests resolve|answer`, `audit`): the optional
`ACTION ID` positionals, bounded text options, and the exit codes they document.

Exit codes: 0 done; 1 the admin API refused or failed (its message is printed); 2 the command
line is wrong (nothing was sent); 3 the admin API did not answer; 78 a configuration error.
"""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from ops.cli_args import id_arg
from ops.errors import CliError

REASON_MAX = 1000  # the admin API's bound for every reason (web.admin.api.ActionReason)
NOTE_MAX = 2000
_RELATIVE = re.compile(r"([0-9]{1,4})([mhd])", re.ASCII)
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


class UsageError(CliError):
    """The command line is wrong; nothing was sent (exit 2, like argparse)."""

    exit_code = 2


def text_arg(limit: int):
    """argparse type: free text, at most `limit` characters, not blank."""

    def parse(text: str) -> str:
        if len(text) > limit:
            raise argparse.ArgumentTypeError(f"at most {limit} characters (got {len(text)})")
        if not text.strip():
            raise argparse.ArgumentTypeError("must not be blank")
        return text.strip()

    return parse


def since_arg(text: str) -> str:
    """argparse type: `24h`, `7d`, `30m` ago, or a date/time (`2026-11-01`,
    `2026-11-01T12:00:00Z`); returned as ISO-8601 UTC for the API."""
    raw = text.strip()
    if len(raw) > 40:
        raise argparse.ArgumentTypeError("a time is at most 40 characters")
    if match := _RELATIVE.fullmatch(raw):
        delta = timedelta(**{_UNITS[match[2]]: int(match[1])})
        return (datetime.now(UTC) - delta).isoformat(timespec="seconds")
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{raw!r}: use 24h, 7d, 30m or a date like 2026-11-01 or 2026-11-01T12:00:00Z"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat(timespec="seconds")


def add_action(p: argparse.ArgumentParser, actions: list[str], id_help: str) -> None:
    """`vitrine NAME` lists; `vitrine NAME ACTION ID` acts on one object."""
    p.add_argument(
        "action", nargs="?", choices=actions, help="act on one object (without: list them)"
    )
    p.add_argument("id", nargs="?", type=id_arg, help=id_help)


def need_id(args: argparse.Namespace, usage: str) -> int:
    if args.id is None:
        raise UsageError(f"{args.action} needs an id: {usage}")
    return int(args.id)


def refuse_list_options(args: argparse.Namespace, *names: str) -> None:
    """Listing filters make no sense with an action: say so instead of ignoring them."""
    given = [n for n in names if getattr(args, n, None) not in (None, False)]
    if given:
        flags = ", ".join("--" + n.replace("_", "-") for n in given)
        raise UsageError(f"{flags}: only for listing, not with `{args.action}`")


def shorten(value: Any, width: int) -> str:
    text = "" if value is None else str(value)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
