"""Sends what the alerts owe the operators: one message per kind and phase, on each channel.

An alert owes a message while `notify_at` is set (`fleet.alerting`). A pass claims the due
rows (a conditional UPDATE stamping a claim token, so two dispatchers never take the same
row), groups them by kind and phase ("raised"/"resolved"), and sends each group once per
channel: 200 bots failing together make one message that counts them. A kind that had a
message less than `ALERT_MIN_INTERVAL_SECONDS` ago waits, so its next message counts
everything that came meanwhile. What a channel took is recorded per alert (`notified`), so a
retry after a failure sends only to the channels that missed it, with exponential backoff.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from core.notify_settings import NotifySettings
from fleet.models import Alert, AlertKind
from shop.models import NoticeKind
from shop.notify.channels import OperatorChannel, SendFailed
from shop.notify.claims import claim_due
from shop.notify.compose import PHASES, Phase, compose
from shop.notify.seller import notify_seller

log = logging.getLogger("shop.notify")

BATCH = 1000
CLAIM_S = 120.0  # a claimed row is someone's for this long (a crashed dispatcher's comes back)
BACKOFF_BASE_S = 15.0
BACKOFF_MAX_S = 3600.0
SELLER_ALERTS = {AlertKind.CONFIG_ERROR, AlertKind.LOW_STOCK, AlertKind.WAITING_STOCK}


def backoff(attempts: int, retry_after: float | None = None) -> float:
    """Seconds before retry number `attempts` (1, 2, …): 15 s doubling up to an hour, never
    sooner than the channel asked."""
    wait: float = min(BACKOFF_BASE_S * 2.0 ** max(0, attempts - 1), BACKOFF_MAX_S)
    return max(wait, retry_after or 0.0)


@dataclass
class PassReport:
    claimed: int = 0
    messages: int = 0
    failures: list[str] = field(default_factory=list)
    deferred: int = 0


def _owed(alert: Alert, names: list[str]) -> list[Phase]:
    done = alert.notified or {}
    phases: list[Phase] = []
    for phase in PHASES:
        if phase == "resolved" and alert.resolved_at is None:
            continue
        if set(names) - set(done.get(phase, [])):
            phases.append(phase)
    return phases


class OperatorDispatcher:
    """Sends the operators' alert messages; one per deployment is enough, more are safe."""

    def __init__(
        self, channels: list[OperatorChannel], notify: NotifySettings, locale: str
    ) -> None:
        self.channels = channels
        self.notify = notify
        self.locale = locale
        self.last_sent: dict[tuple[str, str], float] = {}  # (kind, phase) -> monotonic

    async def _claim(self, now: datetime) -> list[Alert]:
        return await claim_due(Alert, "notify_at", "notify_claim", now, batch=BATCH, hold_s=CLAIM_S)

    async def run_once(self, now: datetime | None = None) -> PassReport:
        """One pass over the due alerts; never raises for a channel's failure."""
        now = now or datetime.now(UTC)
        report = PassReport()
        alerts = await self._claim(now)
        report.claimed = len(alerts)
        if not alerts:
            return report
        await self._tell_sellers(alerts)
        names = [c.name for c in self.channels]
        groups: dict[tuple[str, Phase], list[Alert]] = defaultdict(list)
        for alert in alerts:
            for phase in _owed(alert, names):
                groups[(str(alert.kind), phase)].append(alert)
        retry_after: dict[int, float] = {}
        errors: dict[int, str] = {}
        deferred: dict[int, float] = {}
        for (kind, phase), members in groups.items():
            wait = self._wait_for(kind, phase)
            if wait > 0:
                for a in members:
                    deferred[a.id] = max(deferred.get(a.id, 0.0), wait)
                report.deferred += len(members)
                continue
            sent_any = False
            for channel in self.channels:
                todo = [a for a in members if channel.name not in (a.notified or {}).get(phase, [])]
                if not todo:
                    continue
                out = compose(kind, phase, todo, self.locale, self.notify.admin_public_url)
                try:
                    await channel.send(out)
                except SendFailed as exc:
                    report.failures.append(f"{channel.name}: {exc}")
                    log.warning(
                        "alert message %s/%s to %s failed: %s", kind, phase, channel.name, exc
                    )
                    for a in todo:
                        errors[a.id] = f"{channel.name}: {exc}"[:500]
                        if exc.retry_after is not None:
                            retry_after[a.id] = max(retry_after.get(a.id, 0.0), exc.retry_after)
                    continue
                sent_any = True
                report.messages += 1
                for a in todo:
                    done = dict(a.notified or {})
                    done[phase] = sorted({*done.get(phase, []), channel.name})
                    a.notified = done
            if sent_any:
                self.last_sent[(kind, phase)] = time.monotonic()
        await self._settle(alerts, names, now, errors, retry_after, deferred)
        return report

    def _wait_for(self, kind: str, phase: str) -> float:
        last = self.last_sent.get((kind, phase))
        if last is None:
            return 0.0
        return max(0.0, self.notify.min_interval_s - (time.monotonic() - last))

    async def _settle(
        self,
        alerts: list[Alert],
        names: list[str],
        now: datetime,
        errors: dict[int, str],
        retry_after: dict[int, float],
        deferred: dict[int, float],
    ) -> None:
        """Write back what each alert still owes, and when to try again. A row resolved
        after our claim lost the claim (`resolve_alert` clears it): only the channels are
        written back, its re-armed `notify_at` stays."""
        for alert in alerts:
            claim = alert.notify_claim
            owed = _owed(alert, names)
            if not owed:
                values: dict[str, object] = {
                    "notify_at": None,
                    "notify_attempts": 0,
                    "notify_error": None,
                }
            elif alert.id in errors:
                attempts = alert.notify_attempts + 1
                wait = backoff(attempts, retry_after.get(alert.id))
                values = {
                    "notify_at": now + timedelta(seconds=wait),
                    "notify_attempts": attempts,
                    "notify_error": errors[alert.id],
                }
            else:  # deferred by the per-kind interval
                values = {"notify_at": now + timedelta(seconds=deferred.get(alert.id, 1.0))}
            written = await Alert.filter(id=alert.id, notify_claim=claim).update(
                notified=alert.notified, notify_claim=None, **values
            )
            if not written:
                await Alert.filter(id=alert.id).update(notified=alert.notified)

    async def _tell_sellers(self, alerts: list[Alert]) -> None:
        """The store owner hears of their bot's config errors and their stock (once each)."""
        for alert in alerts:
            if alert.kind not in SELLER_ALERTS or alert.tenant_id is None:
                continue
            if (alert.notified or {}).get("seller"):
                continue
            details = alert.details or {}
            if alert.kind == AlertKind.CONFIG_ERROR:
                kind = (
                    NoticeKind.BOT_INTENTS
                    if details.get("code") == "4014"
                    else NoticeKind.BOT_LOGIN
                )
                params = {"error": details.get("error", alert.message)[:300]}
            elif alert.kind == AlertKind.LOW_STOCK:
                kind = NoticeKind.LOW_STOCK
                params = {
                    k: details.get(k, "?")
                    for k in ("product", "variation", "available", "threshold")
                }
            else:
                kind = NoticeKind.WAITING_STOCK
                params = {k: details.get(k, "?") for k in ("order_id", "quantity")}
            try:
                await notify_seller(alert.tenant_id, kind, params, dedupe=f"alert:{alert.id}")
            except Exception:  # noqa: BLE001 - the operators' message must still leave
                log.exception("seller notice for alert %s failed", alert.id)
                continue
            alert.notified = {**(alert.notified or {}), "seller": True}
