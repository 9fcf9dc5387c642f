"""`vitrine ratings [--tenant T] [--deleted]` and `vitrine ratings delete ID --reason R`
(issue 17): buyers' ratings, and the operator's deletion of one, through the admin API."""

from __future__ import annotations

import argparse
from typing import Any

from core.bootstrap import load_settings_or_exit
from ops import opscmds
from ops.cli_actions import (
    REASON_MAX,
    UsageError,
    add_action,
    need_id,
    refuse_list_options,
    shorten,
    text_arg,
)
from ops.cli_args import id_arg, limit_arg


def cmd_ratings(args: argparse.Namespace) -> int:
    """List ratings (newest first), or delete one with a reason (audited)."""
    settings = load_settings_or_exit()
    if args.action is None:
        if args.id is not None or args.reason:
            raise UsageError('vitrine ratings delete ID --reason "..."')
        with opscmds.client(settings) as api:
            body = api.get(
                "/api/ratings",
                tenant_id=args.tenant,
                product_id=args.product,
                deleted="true" if args.deleted else None,
                limit=args.limit,
            )
        return _print_ratings(body)
    refuse_list_options(args, "tenant", "product", "deleted")
    rating_id = need_id(args, 'vitrine ratings delete ID --reason "..."')
    if not args.reason:
        raise UsageError('delete needs a reason: vitrine ratings delete ID --reason "..."')
    with opscmds.client(settings) as api:
        answer = api.post(f"/api/ratings/{rating_id}/delete", {"reason": args.reason})
    print(
        f"rating {answer['id']} (store {answer['tenant_id']}, order {answer['order_id']}, "
        f"{answer['stars']} stars) deleted; reason: {args.reason}"
    )
    return 0


def _print_ratings(body: dict[str, Any]) -> int:
    rows = [
        (
            r["id"],
            r["tenant_id"],
            r["order_id"],
            r["product_id"],
            r["stars"],
            (r["given_at"] or "")[:19],
            "deleted" if r["deleted_at"] else ("replied" if r["reply"] else ""),
            shorten(r["comment"], 50),
        )
        for r in body["items"]
    ]
    if not rows:
        print("no ratings")
        return 0
    print(
        opscmds.table(
            ("id", "tenant", "order", "product", "stars", "given (UTC)", "state", "comment"), rows
        )
    )
    print(f"{body['page']['total']} rating(s)")
    return 0


def add_arguments(name: str, p: argparse.ArgumentParser) -> None:
    if name == "ratings":
        add_action(p, ["delete"], "rating id (see `vitrine ratings`)")
        p.add_argument(
            "--reason", type=text_arg(REASON_MAX), help="delete: why (kept in the audit log)"
        )
        p.add_argument("--tenant", type=id_arg, help="list one store's ratings")
        p.add_argument("--product", type=id_arg, help="list one product's ratings")
        p.add_argument("--deleted", action="store_true", help="list deleted ratings only")
        p.add_argument("--limit", type=limit_arg, default=100)


COMMANDS = {
    "ratings": (
        cmd_ratings,
        "buyers' ratings (--tenant, --deleted); delete ID --reason R removes one (audited)",
    ),
}
