"""Issue 13 §5: `webhook_events` does not grow forever; the reconciler prunes it daily."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from core.errors import ConfigError
from shop.models import WebhookEvent
from shop.payments.payment_reconciler import Policy, run_forever
from shop.payments.service import PaymentServices
from tests.shop.helpers import make_settings

NO_PROVIDER = PaymentServices(gateway=None, redis=None, fee_bps=0, hold_days=0)  # type: ignore[arg-type]


async def _event(outcome: str, age: timedelta, key: str | None = None) -> int:
    event = await WebhookEvent.create(outcome=outcome, dedupe_key=key, data_id="1")
    await WebhookEvent.filter(id=event.id).update(received_at=datetime.now(UTC) - age)
    return event.id


async def test_reconciler_prunes_finished_events_older_than_the_retention_and_keeps_the_rest(db):
    old = [
        await _event(outcome, timedelta(days=31, hours=i))
        for i, outcome in enumerate(
            ("processed", "unknown_payment", "ignored", "duplicate", "invalid_signature", "error")
        )
    ]
    kept = [
        await _event("processed", timedelta(days=29)),
        await _event("processed", timedelta(minutes=1)),
        # not processed yet: kept whatever its age (the reconciler still owes it work)
        await _event("accepted", timedelta(days=40), key="mp:1:1:payment.updated"),
    ]
    stop = asyncio.Event()
    loop = asyncio.create_task(
        run_forever(NO_PROVIDER, 3600, stop, Policy(webhook_retention=timedelta(days=30)))
    )
    try:
        for _ in range(200):
            if not await WebhookEvent.filter(id__in=old).exists():
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await loop
    assert not await WebhookEvent.filter(id__in=old).exists()
    assert sorted(await WebhookEvent.all().values_list("id", flat=True)) == sorted(kept)


def test_retention_is_a_setting_bounded_at_start_up(tmp_path):
    settings = make_settings(
        tmp_path, "sqlite://:memory:", "redis://127.0.0.1:1/0", mp_url="http://127.0.0.1:1"
    )
    assert settings.webhook_retention_days == 30
    from core.settings import load_settings

    base = {"DATA_DIR": str(tmp_path / "d"), "LOG_DIR": str(tmp_path / "l")}
    assert (
        load_settings({**base, "WEBHOOK_RETENTION_DAYS": "7"}, env_file=None).webhook_retention_days
        == 7
    )
    with pytest.raises(ConfigError, match="WEBHOOK_RETENTION_DAYS"):
        load_settings({**base, "WEBHOOK_RETENTION_DAYS": "0"}, env_file=None)
