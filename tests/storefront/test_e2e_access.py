"""End to end, real workers (issue 16): a 30-day VIP bought in Discord gets its role, is
reminded 3 days before the end (the clock moved by moving the period), renewed from the DM's
"Renovar" (the end moves from the current end, not from today), survives a leave and rejoin
(role back at the periodic check), and expires (role removed); a permanent pack refunded
through Mercado Pago loses its roles, except one the monthly VIP also holds. The reconciler's
access relay is driven by the test (`AccessRelay.tick`), as the reconciler would every 2 s."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ops.fleet_harness import make_store
from shop.access_relay import AccessRelay
from shop.models import AccessGrant, AccessStatus, Payment, Variation
from shop.payments.sync import sync_payment
from tests.storefront.access_helpers import add_role, roles_of, until_roles
from tests.storefront.helpers import (
    approve_and_sync,
    bought,
    confirm,
    order_id_of,
    post_panel,
    wait_ready,
    wait_status,
)

pytestmark = pytest.mark.e2e


async def test_vip_bought_reminded_renewed_from_dm_rejoined_then_expired(db_fleet, dc, mpc, svc):
    db_fleet.env["VITRINE_ACCESS_RECHECK_S"] = "1"  # the hourly rejoin check, every second
    store = await make_store(db_fleet, dc, stock={"30 dias": ["KEY-1", "KEY-2"]})
    vip = await add_role(dc, store, "VIP")
    variation = store.variations[0]
    await Variation.filter(id=variation.id).update(role_ids=[vip], duration_days=30)
    db_fleet.start()
    await wait_ready(db_fleet, dc, store)
    relay = AccessRelay(svc.redis)
    first = await bought(store, mpc, svc, await post_panel(store), variation.id)
    await until_roles(dc, store, relay, has={vip})  # with the delivery, no relay needed
    grant = await AccessGrant.get(order_id=first)

    # the clock moves 27 days: 2 days 23 hours left
    end = (datetime.now(UTC) + timedelta(days=2, hours=23)).replace(microsecond=0)
    await AccessGrant.filter(id=grant.id).update(ends_at=end, next_due_at=datetime.now(UTC))
    await relay.tick()
    dm = await store.buyer.wait_dm(lambda m: "3 dias" in m.text(), timeout=10)
    assert f"vt:renew:{grant.id}" in dm.custom_ids()

    card = (await (await store.buyer.click(dm, f"vt:renew:{grant.id}")).wait_reply()).message
    assert "30 dias" in card.text()
    second = order_id_of(await confirm(store.buyer, card))
    await approve_and_sync(mpc, svc, second)
    await wait_status(second, "delivered")
    grant = await AccessGrant.get(id=grant.id)
    assert grant.ends_at == end + timedelta(days=30) and grant.renewals == 1

    await dc.remove_member(store.guild, store.buyer.id)
    await dc.add_member(store.guild, store.buyer.id)
    assert vip not in await roles_of(dc, store)
    await until_roles(dc, store, relay, has={vip})  # back at the periodic check

    await AccessGrant.filter(id=grant.id).update(
        ends_at=datetime.now(UTC) - timedelta(seconds=1), next_due_at=datetime.now(UTC)
    )
    await until_roles(dc, store, relay, has=set(), lacks={vip})
    ended = await AccessGrant.get(id=grant.id)
    assert ended.status == AccessStatus.ENDED and ended.ended_reason == "expired"


async def test_refund_through_mercado_pago_removes_roles_but_keeps_one_still_paid_for(
    db_fleet, dc, mpc, svc
):
    store = await make_store(db_fleet, dc, stock={"30 dias": ["KEY-1"], "Vitalício": ["KEY-2"]})
    vip, course = await add_role(dc, store, "VIP"), await add_role(dc, store, "Curso")
    monthly, forever = store.variations
    await Variation.filter(id=monthly.id).update(role_ids=[vip], duration_days=30)
    await Variation.filter(id=forever.id).update(role_ids=[vip, course])
    db_fleet.start()
    await wait_ready(db_fleet, dc, store)
    relay = AccessRelay(svc.redis)
    panel = await post_panel(store)
    await bought(store, mpc, svc, panel, monthly.id)
    pack = await bought(store, mpc, svc, panel, forever.id)
    await until_roles(dc, store, relay, has={vip, course})

    payment = await Payment.get(order_id=pack)
    await mpc.refund(int(payment.provider_payment_id))
    await sync_payment(svc, str(payment.id), "test:webhook")
    await wait_status(pack, "refunded")
    revoked = await AccessGrant.get(order_id=pack)
    assert revoked.status == AccessStatus.REVOKED and revoked.ended_reason == "refund"
    await until_roles(dc, store, relay, has={vip}, lacks={course})
