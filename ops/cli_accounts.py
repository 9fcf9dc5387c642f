"""`vitrine accounts [block|unblock ID --reason R]`, `vitrine requests [resolve|answer ID]`
and `vitrine queue` (the operators' work queue), through the admin API."""

from __future__ import annotations

import argparse
from typing import Any

from core.bootstrap import load_settings_or_exit
from ops import opscmds
from ops.cli_actions import (
    NOTE_MAX,
    REASON_MAX,
    UsageError,
    add_action,
    need_id,
    refuse_list_options,
    shorten,
    text_arg,
)
from ops.cli_args import id_arg, limit_arg

QUEUE_TYPES = ["request", "withdrawal", "waiting_stock", "alert"]
REQUEST_KINDS = ["instance_review", "unblock_appeal", "support"]


def cmd_accounts(args: argparse.Namespace) -> int:
    """List accounts (--blocked, --search), or block / unblock one with a reason."""
    settings = load_settings_or_exit()
    if args.action is None:
        if args.id is not None or args.reason:
            raise UsageError("vitrine accounts block|unblock ID --reason R")
        with opscmds.client(settings) as api:
            body = api.get(
                "/api/accounts",
                blocked="true" if args.blocked else None,
                q=args.search,
                limit=args.limit,
            )
        return _print_accounts(body, args.blocked)
    refuse_list_options(args, "blocked", "search")
    account_id = need_id(args, f'vitrine accounts {args.action} ID --reason "..."')
    if not args.reason:
        raise UsageError(
            f'{args.action} needs a reason: vitrine accounts {args.action} ID --reason "..."'
        )
    with opscmds.client(settings) as api:
        answer = api.post(f"/api/accounts/{account_id}/{args.action}", {"reason": args.reason})
    state = "blocked" if answer["blocked"] else "unblocked"
    print(f"account {answer['id']} ({answer['username']}): {state}; reason: {args.reason}")
    if answer["sessions_revoked"]:
        print(f"  portal sessions ended: {answer['sessions_revoked']}")
    if answer["instances_marked"]:
        what = "stop" if answer["blocked"] else "may start again"
        ids = ", ".join(str(i) for i in answer["instances_marked"])
        print(f"  bots that {what} within seconds: {ids}")
    return 0


def _print_accounts(body: dict[str, Any], blocked_only: bool) -> int:
    rows = [
        (
            a["id"],
            a["discord_id"],
            shorten(a["username"], 24),
            a["role"],
            "yes" if a["blocked"] else "",
            shorten(a["blocked_reason"], 40),
            ",".join(str(t) for t in a["tenant_ids"]),
        )
        for a in body["items"]
    ]
    if not rows:
        print("no blocked accounts" if blocked_only else "no accounts")
        return 0
    print(opscmds.table(("id", "discord id", "name", "role", "blocked", "reason", "stores"), rows))
    print(f"{body['page']['total']} account(s)")
    return 0


def cmd_requests(args: argparse.Namespace) -> int:
    """Sellers' requests (open by default); resolve one with a note, or answer an unblock
    appeal (--unblock or --keep-blocked, with --message for the seller)."""
    settings = load_settings_or_exit()
    if args.action is None:
        if args.id is not None or args.note or args.message or args.decision:
            raise UsageError(
                "vitrine requests resolve ID --note N, or "
                "vitrine requests answer ID --unblock|--keep-blocked --message M"
            )
        with opscmds.client(settings) as api:
            body = api.get(
                "/api/requests",
                status=None if args.all else "open",
                kind=args.kind,
                limit=args.limit,
            )
        return _print_requests(body, args.all)
    refuse_list_options(args, "all", "kind")
    rid = need_id(args, f"vitrine requests {args.action} ID")
    if args.action == "resolve":
        if not args.note or args.message or args.decision:
            raise UsageError('resolve takes --note: vitrine requests resolve ID --note "..."')
        with opscmds.client(settings) as api:
            answer = api.post(f"/api/requests/{rid}/resolve", {"note": args.note})
        print(f"request {answer['id']} ({answer['kind']}): {answer['status']}; note: {args.note}")
        return 0
    if not args.decision or not args.message or args.note:
        raise UsageError(
            "answer needs a decision and a message: vitrine requests answer ID "
            '--unblock|--keep-blocked --message "..."'
        )
    with opscmds.client(settings) as api:
        answer = api.post(
            f"/api/requests/{rid}/answer", {"decision": args.decision, "message": args.message}
        )
    blocked = {True: "still blocked", False: "unblocked", None: "account gone"}
    print(
        f"appeal {answer['id']} answered ({answer['decision']}): account {answer['account_id']} "
        f"{blocked[answer['account_blocked']]}; the seller sees: {args.message}"
    )
    return 0


def _print_requests(body: dict[str, Any], everything: bool) -> int:
    rows = [
        (
            r["id"],
            r["kind"],
            r["status"],
            r["tenant_id"],
            r["account_id"],
            (r["created_at"] or "")[:19],
            shorten(r["subject"], 40),
            shorten(r["body"], 50),
        )
        for r in body["items"]
    ]
    if not rows:
        print("no requests" if everything else "no open requests")
        return 0
    print(
        opscmds.table(
            ("id", "kind", "status", "tenant", "account", "created (UTC)", "subject", "text"), rows
        )
    )
    print(f"{body['page']['total']} request(s)")
    return 0


def cmd_queue(args: argparse.Namespace) -> int:
    """The work queue (`/api/monitor/requests`): everything waiting for a person, oldest first,
    with the command that acts on each item."""
    settings = load_settings_or_exit()
    with opscmds.client(settings) as api:
        body = api.get(
            "/api/monitor/requests", type=args.type, tenant_id=args.tenant, limit=args.limit
        )
    if not body["items"]:
        print("the work queue is empty")
        return 0
    rows = [
        (
            i["type"],
            i["id"],
            i["tenant_id"],
            i["since"][:19],
            shorten(i["summary"], 60),
            _next_command(i),
        )
        for i in body["items"]
    ]
    print(opscmds.table(("type", "id", "tenant", "since (UTC)", "summary", "next"), rows))
    print(", ".join(f"{k} {v}" for k, v in body["counts"].items()))
    return 0


def _next_command(item: dict[str, Any]) -> str:
    kind, ident = item["type"], item["id"]
    detail = item.get("detail") or {}
    if kind == "request" and detail.get("kind") == "unblock_appeal":
        return f"vitrine requests answer {ident} --unblock|--keep-blocked --message ..."
    if kind == "request":
        return f"vitrine requests resolve {ident} --note ..."
    if kind == "withdrawal":
        action = "approve" if detail.get("status") == "requested" else "complete"
        extra = " --e2e-id E..." if action == "complete" else ""
        return f"vitrine withdrawals {action} {ident}{extra}"
    if kind == "alert":
        return f"vitrine alerts ack {ident}"
    return "vitrine retry-waiting-stock --tenant {} --product {}".format(*ident.split(":"))


def add_arguments(name: str, p: argparse.ArgumentParser) -> None:
    if name == "accounts":
        add_action(p, ["block", "unblock"], "account id (see `vitrine accounts`)")
        p.add_argument(
            "--reason", type=text_arg(REASON_MAX), help="block/unblock: why (kept in the audit log)"
        )
        p.add_argument("--blocked", action="store_true", help="list blocked accounts only")
        p.add_argument("--search", type=text_arg(100), help="username or Discord id")
        p.add_argument("--limit", type=limit_arg, default=100)
    if name == "requests":
        add_action(p, ["resolve", "answer"], "request id (see `vitrine requests`)")
        p.add_argument("--all", action="store_true", help="resolved ones too")
        p.add_argument("--kind", choices=REQUEST_KINDS)
        p.add_argument("--limit", type=limit_arg, default=100)
        p.add_argument("--note", type=text_arg(NOTE_MAX), help="resolve: the note for the seller")
        decision = p.add_mutually_exclusive_group()
        decision.add_argument(
            "--unblock",
            dest="decision",
            action="store_const",
            const="unblock",
            help="answer: lift the block",
        )
        decision.add_argument(
            "--keep-blocked",
            dest="decision",
            action="store_const",
            const="keep_blocked",
            help="answer: keep the account blocked",
        )
        p.add_argument(
            "--message", type=text_arg(NOTE_MAX), help="answer: what the seller reads in the portal"
        )
    if name == "queue":
        p.add_argument("--type", choices=QUEUE_TYPES)
        p.add_argument("--tenant", type=id_arg)
        p.add_argument("--limit", type=limit_arg, default=100)


COMMANDS = {
    "queue": (cmd_queue, "the operators' work queue, oldest first, with the command for each"),
    "accounts": (
        cmd_accounts,
        "list accounts (--blocked), or block|unblock ID --reason R",
    ),
    "requests": (
        cmd_requests,
        "sellers' open requests; resolve ID --note N; answer an unblock appeal: "
        "answer ID --unblock|--keep-blocked --message M",
    ),
}
