"""The alerts only a periodic look can raise or resolve, run by the reconciler.

Raised here: free disk space of the data folder under `ALERT_DISK_MIN_FREE_MB`, the newest
backup older than `ALERT_BACKUP_MAX_AGE_DAYS`, withdrawals pending past
`WITHDRAWAL_SLA_HOURS`, orchestrator nodes whose heartbeat stopped. Resolved here, when the
condition cleared: those, plus the instance alerts (back online; repeated error no longer
repeated; unsuspended), stock (restocked; order delivered), negative balances (covered) and
the one-off alerts (late payments, forged webhooks, foreign guilds) after
`ALERT_QUIET_MINUTES` without a new occurrence.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis.asyncio as aioredis

from core.i18n import format_brl
from core.notify_settings import NotifySettings
from fleet import keys
from fleet.alerting import (
    alert_key,
    open_alerts,
    raise_alert,
    repeated_error,
    repeated_error_count,
    resolve_alert,
)
from fleet.leases import live_nodes
from fleet.models import AlertKind, BotInstance
from fleet.runtime import RuntimeStore
from fleet.states import InstanceState
from shop import ledger, stock
from shop.models import Account, Order, Variation, Withdrawal
from shop.states import OrderStatus, WithdrawalStatus

log = logging.getLogger("shop.notify.checks")
K = AlertKind
ONE_OFF = (K.PAYMENT_LATE, K.WEBHOOK_FORGERY, K.FOREIGN_GUILD)
BACKUP_GLOB = "vitrine-*.tar.gz*"


def _existing(path: Path) -> Path:
    path = path.resolve()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _newest_backup(folder: Path) -> tuple[int, float | None]:
    """How many archives `vitrine backup` left in `folder`, and the newest one's mtime."""
    archives = list(folder.glob(BACKUP_GLOB)) if folder.is_dir() else []
    return len(archives), max((p.stat().st_mtime for p in archives), default=None)


class AlertChecks:
    """One `run_once` looks at every condition; each check's failure is logged, not raised."""

    def __init__(
        self,
        notify: NotifySettings,
        data_dir: Path,
        redis: aioredis.Redis | None,
        locale: str = "pt-BR",
    ) -> None:
        self.notify = notify
        self.data_dir = data_dir
        self.redis = redis
        self.locale = locale
        self.host = socket.gethostname()[:60]

    async def run_once(self, now: datetime | None = None) -> list[str]:
        """Run every check; returns the names of those that failed."""
        now = now or datetime.now(UTC)
        failed = []
        for check in (
            self.disk,
            self.backup,
            self.withdrawals,
            self.nodes,
            self.instances,
            self.stock_and_orders,
            self.balances,
            self.one_off,
        ):
            try:
                await check(now)
            except Exception:  # noqa: BLE001 - the other checks still run
                log.exception("alert check %s failed", check.__name__)
                failed.append(check.__name__)
        return failed

    async def disk(self, now: datetime) -> None:
        key = alert_key(K.DISK_SPACE, self.host)
        usage = shutil.disk_usage(_existing(self.data_dir))
        free_mb = usage.free // (1024 * 1024)
        if free_mb < self.notify.disk_min_free_mb:
            await raise_alert(
                K.DISK_SPACE,
                f"{self.host}: {free_mb} MB free on the disk of {self.data_dir} "
                f"(threshold {self.notify.disk_min_free_mb} MB)",
                key=key,
                details={"host": self.host, "free_mb": free_mb, "path": str(self.data_dir)},
            )
        else:
            await resolve_alert(key)

    async def backup(self, now: datetime) -> None:
        folder = Path(self.notify.backup_dir)
        archives, newest = await asyncio.to_thread(_newest_backup, folder)
        if newest is None:  # never backed up: count from the first account
            first = await Account.all().order_by("created_at").first()
            if first is None:
                return
            newest = first.created_at.timestamp()
        age_days = (now.timestamp() - newest) / 86_400
        key = alert_key(K.BACKUP_STALE)
        if age_days > self.notify.backup_max_age_days:
            what = (
                f"the newest backup in {folder}/ is {age_days:.0f} days old"
                if archives
                else (f"no backup in {folder}/ yet")
            )
            await raise_alert(
                K.BACKUP_STALE,
                f"{what} (limit {self.notify.backup_max_age_days} days): run `vitrine backup`",
                key=key,
                details={"folder": str(folder), "age_days": round(age_days, 1)},
            )
        else:
            await resolve_alert(key)

    async def withdrawals(self, now: datetime) -> None:
        pending = (WithdrawalStatus.REQUESTED, WithdrawalStatus.PROCESSING)
        cutoff = now - timedelta(hours=self.notify.withdrawal_sla_hours)
        late = await Withdrawal.filter(status__in=pending, requested_at__lte=cutoff).limit(500)
        for w in late:
            hours = (now - w.requested_at).total_seconds() / 3600
            await raise_alert(
                K.WITHDRAWAL_SLA,
                f"withdrawal #{w.id} of {format_brl(w.amount_cents)} {w.status} for "
                f"{hours:.0f} h (SLA {self.notify.withdrawal_sla_hours} h)",
                key=alert_key(K.WITHDRAWAL_SLA, w.id),
                tenant_id=w.tenant_id,
                details={"withdrawal_id": w.id, "status": str(w.status)},
            )
        late_ids = {w.id for w in late}
        for alert in await open_alerts([K.WITHDRAWAL_SLA]):
            wid = (alert.details or {}).get("withdrawal_id")
            if (
                wid not in late_ids
                and not await Withdrawal.filter(id=wid, status__in=pending).exists()
            ):
                await resolve_alert(alert.open_key or "")

    async def nodes(self, now: datetime) -> None:
        if self.redis is None:
            return
        known = {str(n) for n in await self.redis.smembers(keys.ORCHESTRATOR_NODES)}
        live = await live_nodes(self.redis)
        for node in sorted(known - live):
            await raise_alert(
                K.NODE_DOWN,
                f"orchestrator node {node} stopped beating: nothing restarts its bots until "
                f"it returns or a live node takes them over "
                f"(live: {', '.join(sorted(live)) or 'none'})",
                key=alert_key(K.NODE_DOWN, node),
                details={"node": node, "live": sorted(live)},
            )
        for alert in await open_alerts([K.NODE_DOWN]):
            if (alert.details or {}).get("node") not in known - live:
                await resolve_alert(alert.open_key or "")

    async def instances(self, now: datetime) -> None:
        alerts = await open_alerts(
            [K.CRASHLOOP, K.CONFIG_ERROR, K.REPEATED_ERROR, K.AUTO_SUSPENDED]
        )
        if not alerts:
            return
        ids = {a.instance_id for a in alerts if a.instance_id is not None}
        bots = {b.id: b for b in await BotInstance.filter(id__in=list(ids))}
        store = RuntimeStore(self.redis) if self.redis is not None else None
        records = await store.get_many(ids) if store is not None else {}
        threshold = repeated_error_count()
        for alert in alerts:
            iid = alert.instance_id
            bot = bots.get(iid) if iid is not None else None
            rec = records.get(iid) if iid is not None else None
            online = rec is not None and rec.state == InstanceState.ONLINE
            if bot is None:
                clear = True  # the bot was deleted
            elif alert.kind == K.AUTO_SUSPENDED:
                clear = not bot.suspended
            elif alert.kind == K.REPEATED_ERROR:
                history = await store.error_history(bot.id) if store is not None else []
                clear = repeated_error(history, time.time(), threshold) is None
            else:
                clear = online
            if clear:
                await resolve_alert(alert.open_key or "")

    async def stock_and_orders(self, now: datetime) -> None:
        for alert in await open_alerts([K.LOW_STOCK]):
            vid = (alert.details or {}).get("variation_id")
            variation = await Variation.get_or_none(id=vid).prefetch_related("tenant")
            if variation is None or not variation.active or variation.deleted_at is not None:
                await resolve_alert(alert.open_key or "")
                continue
            available = (await stock.counts([variation.id]))[variation.id]["available"]
            if available >= variation.tenant.low_stock_threshold:
                await resolve_alert(alert.open_key or "")
        for alert in await open_alerts([K.WAITING_STOCK]):
            oid = (alert.details or {}).get("order_id")
            if not await Order.filter(id=oid, status=OrderStatus.WAITING_STOCK).exists():
                await resolve_alert(alert.open_key or "")

    async def balances(self, now: datetime) -> None:
        for alert in await open_alerts([K.NEGATIVE_BALANCE]):
            if alert.tenant_id is None:
                await resolve_alert(alert.open_key or "")
            elif (await ledger.balance(alert.tenant_id)).total_cents >= 0:
                await resolve_alert(alert.open_key or "")

    async def one_off(self, now: datetime) -> None:
        calm = now - timedelta(minutes=self.notify.quiet_minutes)
        for alert in await open_alerts(ONE_OFF):
            seen = alert.last_seen_at or alert.created_at
            if seen <= calm:
                await resolve_alert(alert.open_key or "")
