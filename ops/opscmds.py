"""`vitrine status|instances|restart|suspend|resume|orders|retry-waiting-stock|withdrawals|refund`.

Each talks to the admin API (`ops.adminclient`); `status` also checks the database and Redis
directly when the admin API does not answer.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

import httpx

from core.bootstrap import load_settings_or_exit
from core.i18n import format_brl
from core.settings import Settings
from ops.adminclient import AdminClient, AdminUnreachable
from ops.cli_args import id_arg, limit_arg
from ops.errors import CliError
from ops.withdrawal_cells import PAYOUT_COLUMNS, payout_cells
from shop import inputs

# Tests inject an httpx transport here (None: real network).
TRANSPORT: httpx.BaseTransport | None = None


def client(settings: Settings) -> AdminClient:
    return AdminClient(settings, transport=TRANSPORT)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A plain-text table with left-aligned columns."""
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def _yes(ok: bool) -> str:
    return "ok" if ok else "DOWN"


def _service_detail(name: str, health: dict[str, Any]) -> str:
    if name == "orchestrator" and health.get("nodes"):
        nodes = ", ".join(f"{n} {age:.0f}s ago" for n, age in health["nodes"].items())
        return f"heartbeat {nodes}"
    return health.get("detail") or ""


def format_status(body: dict[str, Any]) -> str:
    rows = [(name, _yes(h["ok"]), _service_detail(name, h)) for name, h in body["services"].items()]
    rows += [(dep, _yes(body[dep]["ok"]), body[dep].get("detail") or "") for dep in ("db", "redis")]
    out = [f"status: {body['status']}", "", table(("component", "state", "detail"), rows), ""]
    if body.get("instances") is not None:
        out.append("instances:    " + ", ".join(f"{k} {v}" for k, v in body["instances"].items()))
    if body.get("gateway") is not None:  # online bots: resumed their session / logged in
        out.append("gateway:      " + ", ".join(f"{k} {v}" for k, v in body["gateway"].items()))
    if body.get("orders") is not None:
        out.append("orders:       " + ", ".join(f"{k} {v}" for k, v in body["orders"].items()))
    if body.get("deliveries") is not None:
        out.append("deliveries:   " + ", ".join(f"{k} {v}" for k, v in body["deliveries"].items()))
    if body.get("withdrawals") is not None:
        out.append(f"withdrawals:  pending {body['withdrawals']['pending']}")
    if body.get("webhooks") is not None:
        rate = body["webhooks"].get("success_rate_24h")
        out.append("webhooks:     success 24h " + ("n/a" if rate is None else f"{rate:.0%}"))
    if body.get("confirmations"):
        out.append(
            "confirmed by: "
            + ", ".join(
                f"{k} {v['last_24h']} (24h) / {v['total']}"
                for k, v in body["confirmations"].items()
            )
        )
    if body.get("attention") is not None:
        out.append("attention:    " + ", ".join(f"{k} {v}" for k, v in body["attention"].items()))
    out += _node_lines(body["services"].get("orchestrator") or {})
    return "\n".join(out).rstrip()


def _node_lines(health: dict[str, Any]) -> list[str]:
    """One table row per orchestrator node (several machines share the fleet), and the nodes
    that stopped beating (their bots move to the others once their leases lapse)."""
    nodes = health.get("node_status") or {}
    lines: list[str] = []
    if nodes:
        rows = [
            (
                name,
                n.get("workers"),
                n.get("leases"),
                n.get("adopted"),
                "yes" if n.get("drained") else "no",
                f"{n.get('heartbeat_age_s', 0):.0f}s",
                n.get("pid"),
            )
            for name, n in sorted(nodes.items())
        ]
        lines += [
            "",
            table(("node", "workers", "leases", "adopted", "drained", "heartbeat", "pid"), rows),
        ]
    if health.get("down_nodes"):
        lines.append("nodes down:   " + ", ".join(health["down_nodes"]))
    return lines


async def _direct_checks(settings: Settings) -> dict[str, tuple[bool, str]]:
    from core import redis as core_redis
    from core.db import close_db, init_db, ping_db

    result: dict[str, tuple[bool, str]] = {}
    try:
        await asyncio.wait_for(init_db(settings.database_url), 5)
        result["db"] = await asyncio.wait_for(ping_db(), 3)
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        result["db"] = (False, type(exc).__name__)
    finally:
        await close_db()
    redis = core_redis.connect(settings.redis_url)
    try:
        result["redis"] = await asyncio.wait_for(core_redis.ping(redis), 3)
    except Exception as exc:  # noqa: BLE001
        result["redis"] = (False, type(exc).__name__)
    finally:
        await redis.aclose()
    return result


def cmd_status(args: argparse.Namespace) -> int:
    """The facts of `GET /api/status` as a table; exit 0 when ok, 1 when degraded."""
    settings = load_settings_or_exit()
    try:
        with client(settings) as api:
            body = api.get("/api/status")
    except AdminUnreachable as exc:
        print(f"admin: {exc}")
        checks = asyncio.run(_direct_checks(settings))
        print(
            table(
                ("component", "state", "detail"),
                [("admin", "DOWN", "unreachable")]
                + [(k, _yes(ok), detail) for k, (ok, detail) in checks.items()],
            )
        )
        print("status: degraded")
        return 1
    print(format_status(body))
    return 0 if body["status"] == "ok" else 1


def _last_error(item: dict[str, Any]) -> str:
    err = item.get("last_error") or {}
    if not err:
        return ""
    return str(err.get("message") or err.get("code") or err)[:70]


def _came_back(item: dict[str, Any]) -> str:
    """How the running process's gateway session began: resumed (no login) or logged in."""
    how = (item.get("runtime") or {}).get("connected_by")
    return {"resume": "resumed", "identify": "logged in"}.get(how or "", "")


def cmd_instances(args: argparse.Namespace) -> int:
    """Bot instances with their runtime state and last error."""
    settings = load_settings_or_exit()
    with client(settings) as api:
        body = api.get("/api/instances", state=args.state, tenant_id=args.tenant, limit=500)
    rows = [
        (
            i["id"],
            i["tenant_id"],
            i["name"],
            i["bot_username"],
            i["state"],
            i["desired_state"],
            "yes" if i["suspended"] else "",
            _came_back(i),
            _last_error(i),
        )
        for i in body["items"]
    ]
    if not rows:
        print("no instances" + (f" in state {args.state}" if args.state else ""))
        return 0
    print(
        table(
            ("id", "tenant", "name", "bot", "state", "desired", "suspended", "gateway")
            + ("last error",),
            rows,
        )
    )
    print(f"{body['page']['total']} instance(s)")
    return 0


def cmd_instance_action(args: argparse.Namespace) -> int:
    """restart | suspend | resume one instance, waiting for the orchestrator's answer."""
    action = args.command
    if action == "suspend" and not (args.reason or "").strip():
        raise CliError('suspend needs a reason: vitrine suspend ID --reason "..."')
    settings = load_settings_or_exit()
    print(f"{action} instance {args.id}: waiting for the orchestrator ...", flush=True)
    body = {"reason": args.reason} if args.reason else {}
    with client(settings) as api:
        answer = api.post(f"/api/instances/{args.id}/{action}", body)
    print(f"{action} instance {args.id}: {answer['message']} (state: {answer.get('state')})")
    return 0


def cmd_orders(args: argparse.Namespace) -> int:
    """Orders by status (newest first)."""
    settings = load_settings_or_exit()
    with client(settings) as api:
        body = api.get(
            "/api/orders",
            status=args.status,
            tenant_id=args.tenant,
            product_id=args.product,
            limit=args.limit,
        )
    rows = [
        (
            o["id"],
            o["tenant_id"],
            o["product_id"],
            o["variation_id"],
            o["quantity"],
            f"{o['total_cents'] / 100:.2f}",
            o["status"],
            o["buyer_name"],
            (o["paid_at"] or o["created_at"] or "")[:19],
        )
        for o in body["items"]
    ]
    if not rows:
        print("no orders" + (f" with status {args.status}" if args.status else ""))
        return 0
    print(
        table(
            (
                "id",
                "tenant",
                "product",
                "variation",
                "qty",
                "total R$",
                "status",
                "buyer",
                "paid/created (UTC)",
            ),
            rows,
        )
    )
    print(f"{body['page']['total']} order(s)")
    return 0


def cmd_retry_waiting_stock(args: argparse.Namespace) -> int:
    """Fill waiting_stock orders from the stock now available."""
    settings = load_settings_or_exit()
    body = {k: v for k, v in (("tenant_id", args.tenant), ("product_id", args.product)) if v}
    print("filling waiting_stock orders from available stock ...", flush=True)
    with client(settings) as api:
        answer = api.post("/api/orders/retry-waiting-stock", body)
    ids = ", ".join(str(i) for i in answer["order_ids"]) or "none"
    print(
        f"delivered {answer['delivered']} (orders: {ids}); still waiting {answer['still_waiting']}"
    )
    if answer["not_enqueued"]:
        print(f"not handed to delivery yet (the reconciler retries): {answer['not_enqueued']}")
    return 0


def cmd_withdrawals(args: argparse.Namespace) -> int:
    """Withdrawals; --pending: requested and processing (oldest first)."""
    settings = load_settings_or_exit()
    statuses = ["requested", "processing"] if args.pending else [args.status]
    items: list[dict[str, Any]] = []
    with client(settings) as api:
        for status in statuses:
            body = api.get("/api/withdrawals", status=status, tenant_id=args.tenant)
            items += body["withdrawals"]
    items.sort(key=lambda w: w["requested_at"] or "")
    if not items:
        print("no pending withdrawals" if args.pending else "no withdrawals")
        return 0
    print(
        table(
            ("id", "tenant", "amount R$", "status", "pix key", "requested (UTC)", *PAYOUT_COLUMNS),
            [
                (
                    w["id"],
                    w["tenant_id"],
                    f"{w['amount_cents'] / 100:.2f}",
                    w["status"],
                    f"{w['pix_key_type']}:{w['pix_key']}",
                    (w["requested_at"] or "")[:19],
                    *payout_cells(w),
                )
                for w in items
            ],
        )
    )
    print(f"{len(items)} withdrawal(s)")
    return 0


def cmd_refund(args: argparse.Namespace) -> int:
    """Refund an order as an operator (no balance check: the seller's balance may go
    negative); --reason is required and kept in the audit log."""
    reason = (args.reason or "").strip()
    if not reason:
        raise CliError('refund needs a reason: vitrine refund ORDER --reason "..."')
    body: dict[str, Any] = {"reason": reason}
    if args.amount is not None:
        try:
            body["amount_cents"] = inputs.parse_money(args.amount, min_cents=1)
        except inputs.InvalidInput:
            raise CliError(
                f"--amount {args.amount[:40]!r} is not an amount in reais (e.g. 12,50)"
            ) from None
    settings = load_settings_or_exit()
    with client(settings) as api:
        answer = api.post(f"/api/orders/{args.order}/refund", body)
    what = "all that was left" if args.amount is None else format_brl(body["amount_cents"])
    print(
        f"order {answer['order_id']}: refund of {what} requested; order "
        f"{answer['order_status']}, payment {answer['payment_status']} "
        f"({format_brl(answer['refunded_cents'])} refunded in all)"
    )
    print(
        f"seller balance now {format_brl(answer['balance_cents'])}"
        + (" (negative: withdrawals blocked)" if answer["balance_cents"] < 0 else "")
    )
    for change in answer["changes"]:
        print(f"  {change}")
    return 0


def add_arguments(name: str, p: argparse.ArgumentParser) -> None:
    """The options of the commands defined here."""
    if name == "instances":
        p.add_argument(
            "--state",
            help="runtime state: online, starting, backoff, error, crashloop, suspended, stopped",
        )
        p.add_argument("--tenant", type=id_arg, help="only this tenant (store) id")
    if name in ("restart", "suspend", "resume"):
        p.add_argument("id", type=id_arg, help="instance id (see `vitrine instances`)")
        p.add_argument("--reason", help="why (required for suspend; kept in the audit log)")
    if name == "orders":
        p.add_argument("--status", help="e.g. waiting_stock, pending, paid, delivered")
        p.add_argument("--tenant", type=id_arg)
        p.add_argument("--product", type=id_arg)
        p.add_argument("--limit", type=limit_arg, default=100)
    if name == "retry-waiting-stock":
        p.add_argument("--tenant", type=id_arg, help="only this tenant id")
        p.add_argument("--product", type=id_arg, help="only this product id")
    if name == "refund":
        p.add_argument("order", type=id_arg, help="order id (see `vitrine orders`)")
        p.add_argument("--reason", required=True, help="why (kept in the audit log)")
        p.add_argument("--amount", help="partial refund in reais, e.g. 12,50 (default: all)")
    if name == "withdrawals":
        group = p.add_mutually_exclusive_group()
        group.add_argument("--pending", action="store_true", help="requested and processing")
        group.add_argument("--status", help="requested, processing, completed, rejected, failed")
        p.add_argument("--tenant", type=id_arg)


COMMANDS = {
    "status": (cmd_status, "platform health as a table (exit 0 ok, 1 degraded)"),
    "instances": (cmd_instances, "list bot instances with their state and last error"),
    "restart": (cmd_instance_action, "restart an instance (clears error/crash-loop state)"),
    "suspend": (cmd_instance_action, "suspend an instance: --reason is required"),
    "resume": (cmd_instance_action, "resume a suspended instance"),
    "orders": (cmd_orders, "list orders, e.g. --status waiting_stock"),
    "retry-waiting-stock": (
        cmd_retry_waiting_stock,
        "fill waiting_stock orders from the stock now available",
    ),
    "withdrawals": (cmd_withdrawals, "list withdrawals, e.g. --pending"),
    "refund": (
        cmd_refund,
        "refund an order as an operator: --reason required, "
        "optional --amount 12,50 (may leave the seller's balance negative)",
    ),
}
