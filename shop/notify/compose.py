"""The operators' message for a group of alerts of one kind: pure text building."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from core.i18n import t
from fleet.models import Alert

Phase = Literal["raised", "resolved"]
PHASES: tuple[Phase, ...] = ("raised", "resolved")
LINES_MAX = 10  # alerts listed one per line; the rest are counted
LINE_CHARS = 180
RED, GREEN = 0xD83C3E, 0x2E8B57


@dataclass(frozen=True)
class Outgoing:
    """One message for the operators: the same text on every channel."""

    kind: str
    phase: Phase
    alert_ids: tuple[int, ...]
    subject: str
    body: str
    link: str
    color: int


def _line(alert: Alert, locale: str) -> str:
    who = []
    if alert.tenant_id is not None:
        who.append(t("notify.line.store", locale, id=alert.tenant_id))
    if alert.instance_id is not None:
        who.append(t("notify.line.bot", locale, id=alert.instance_id))
    text = " ".join(alert.message.split())
    if len(text) > LINE_CHARS:
        text = text[: LINE_CHARS - 1] + "…"
    times = (
        f" ({t('notify.line.times', locale, count=alert.occurrences)})"
        if alert.occurrences > 1
        else ""
    )
    prefix = f"{', '.join(who)}: " if who else ""
    return f"• #{alert.id} {prefix}{text}{times}"


def compose(kind: str, phase: Phase, alerts: list[Alert], locale: str, admin_url: str) -> Outgoing:
    """One message counting `alerts` (all of `kind`), listing the first `LINES_MAX`."""
    what = t(f"notify.kind.{kind}", locale)
    subject = t(
        "notify.subject",
        locale,
        phase=t(f"notify.phase.{phase}", locale),
        what=what,
        count=len(alerts),
    )
    lines = [_line(a, locale) for a in alerts[:LINES_MAX]]
    if len(alerts) > LINES_MAX:
        lines.append(t("notify.more", locale, count=len(alerts) - LINES_MAX))
    link = f"{admin_url}/"
    lines.append("")
    lines.append(t("notify.link", locale, url=link))
    lines.append(
        t("notify.api", locale, url=f"{admin_url}/api/alerts?kind={kind}&acknowledged=false")
    )
    return Outgoing(
        kind=kind,
        phase=phase,
        alert_ids=tuple(a.id for a in alerts),
        subject=subject,
        body="\n".join(lines),
        link=link,
        color=RED if phase == "raised" else GREEN,
    )
