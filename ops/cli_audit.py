"""`vitrine alerts [ack ID]` and `vitrine audit` (filters: actor, action, target, tenant,
since, until, limit), through the admin API."""

from __future__ import annotations

import argparse
import json
from typing import Any

from core.bootstrap import load_settings_or_exit
from fleet.models import AlertKind
from ops import opscmds
from ops.cli_actions import (
    NOTE_MAX,
    UsageError,
    add_action,
    need_id,
    refuse_list_options,
    shorten,
    since_arg,
    text_arg,
)
from ops.cli_args import id_arg, limit_arg

ALERT_KINDS = [kind.value for kind in AlertKind]


def cmd_alerts(args: argparse.Namespace) -> int:
    """Open (unacknowledged) alerts, newest first; `ack ID` acknowledges one."""
    settings = load_settings_or_exit()
    if args.action is None:
        if args.id is not None or args.note:
            raise UsageError('vitrine alerts ack ID [--note "..."]')
        with opscmds.client(settings) as api:
            body = api.get(
                "/api/alerts",
                acknowledged=None if args.all else "false",
                kind=args.kind,
                tenant_id=args.tenant,
                limit=args.limit,
            )
        return _print_alerts(body, args.all)
    refuse_list_options(args, "all", "kind", "tenant")
    alert_id = need_id(args, "vitrine alerts ack ID")
    with opscmds.client(settings) as api:
        answer = api.post(
            f"/api/alerts/{alert_id}/acknowledge", {"note": args.note} if args.note else {}
        )
    print(
        f"alert {answer['id']} ({answer['kind']}) acknowledged by {answer['acknowledged_by']} "
        f"at {(answer['acknowledged_at'] or '')[:19]}"
    )
    return 0


def _print_alerts(body: dict[str, Any], everything: bool) -> int:
    rows = [
        (
            a["id"],
            a["kind"],
            a["tenant_id"],
            a["instance_id"],
            (a["created_at"] or "")[:19],
            "yes" if a["acknowledged_at"] else "",
            shorten(a["message"], 70),
        )
        for a in body["items"]
    ]
    if not rows:
        print("no alerts" if everything else "no open alerts")
        return 0
    print(
        opscmds.table(
            ("id", "kind", "tenant", "instance", "created (UTC)", "acked", "message"), rows
        )
    )
    print(f"{body['page']['total']} alert(s)")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    """The audit log, newest first; --json prints the entries with before/after in full."""
    target_type, target_id = None, None
    if args.target:
        target_type, _, target_id = args.target.partition(":")
        if not target_type or (":" in args.target and not target_id):
            raise UsageError("--target is TYPE or TYPE:ID, e.g. withdrawal:12 or account")
    settings = load_settings_or_exit()
    with opscmds.client(settings) as api:
        body = api.get(
            "/api/audit",
            actor=args.actor,
            action=args.action,
            target_type=target_type,
            target_id=target_id or None,
            tenant_id=args.tenant,
            since=args.since,
            until=args.until,
            limit=args.limit,
        )
    if args.json:
        print(json.dumps(body["items"], ensure_ascii=False, indent=2))
        return 0
    rows = [
        (
            e["at"][:19],
            shorten(e["actor"], 28),
            e["action"],
            f"{e['target_type']}:{e['target_id']}",
            e["tenant_id"],
            shorten(json.dumps(e["after"], ensure_ascii=False) if e["after"] else "", 60),
        )
        for e in body["items"]
    ]
    if not rows:
        print("no audit entries match")
        return 0
    print(opscmds.table(("at (UTC)", "actor", "action", "target", "tenant", "after"), rows))
    shown, total = len(rows), body["page"]["total"]
    print(
        f"{shown} of {total} entr{'y' if total == 1 else 'ies'}"
        + (" (--limit for more)" if total > shown else "")
    )
    return 0


def add_arguments(name: str, p: argparse.ArgumentParser) -> None:
    if name == "alerts":
        add_action(p, ["ack"], "alert id (see `vitrine alerts`)")
        p.add_argument("--note", type=text_arg(NOTE_MAX), help="ack: kept in the audit log")
        p.add_argument("--all", action="store_true", help="acknowledged ones too")
        p.add_argument("--kind", choices=ALERT_KINDS)
        p.add_argument("--tenant", type=id_arg)
        p.add_argument("--limit", type=limit_arg, default=100)
    if name == "audit":
        p.add_argument("--actor", type=text_arg(100), help="e.g. admin:token:1a2b3c4d, account:7")
        p.add_argument(
            "--action",
            type=text_arg(60),
            help="exact (withdrawal.completed) or a prefix ending in . (withdrawal.)",
        )
        p.add_argument("--target", type=text_arg(105), help="TYPE or TYPE:ID, e.g. withdrawal:12")
        p.add_argument("--tenant", type=id_arg)
        p.add_argument("--since", type=since_arg, help="24h, 7d, 30m or 2026-11-01[T12:00:00Z]")
        p.add_argument("--until", type=since_arg, help="same forms as --since")
        p.add_argument("--limit", type=limit_arg, default=50)
        p.add_argument("--json", action="store_true", help="full entries as JSON")


COMMANDS = {
    "alerts": (cmd_alerts, "open alerts (--all, --kind); ack ID [--note N] acknowledges one"),
    "audit": (
        cmd_audit,
        "the audit log: --actor, --action, --target TYPE[:ID], --tenant, --since, --limit",
    ),
}
