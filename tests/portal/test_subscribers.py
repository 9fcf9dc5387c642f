"""The subscribers page (issue 16): tabs, MRR and its chart, renewals; staff extend and revoke
(row changes the access engine acts on, audited); one store never sees another's accesses."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from core.models import AuditLog
from shop import access_stats
from shop.models import AccessGrant, AccessOrder, AccessStatus, Order, Product, Variation
from tests.helpers.portal import make_seller

GUILD = "223456789012345678"


async def _variation(tenant, name="VIP", days=30, price=3000):
    product = await Product.create(tenant=tenant, name=name)
    return await Variation.create(
        tenant=tenant, product=product, name=f"{days} dias", price_cents=price, duration_days=days
    )


async def _paid(tenant, variation, buyer, total, *, status="delivered", name="Bia"):
    return await Order.create(
        tenant=tenant,
        product_id=variation.product_id,
        variation=variation,
        interaction_id=uuid.uuid4().hex[:20],
        buyer_discord_id=buyer,
        buyer_name=name,
        quantity=1,
        unit_price_cents=total,
        total_cents=total,
        status=status,
    )


async def _access(tenant, variation, buyer, start, days, *, orders=(), status="active", name="Bia"):
    """An access started at `start` for `days`, paid by `orders` [(total, period days, renewal,
    order status)], one period after the other."""
    grant = await AccessGrant.create(
        tenant=tenant,
        variation=variation,
        buyer_discord_id=buyer,
        guild_id=GUILD,
        role_ids=["323456789012345678"],
        status=status,
        starts_at=start,
        ends_at=start + timedelta(days=days) if days else None,
        roles_applied_at=start,
        renewals=max(0, len(orders) - 1),
    )
    period_start = start
    for total, period, renewal, order_status in orders:
        order = await _paid(tenant, variation, buyer, total, status=order_status, name=name)
        await AccessOrder.create(
            access=grant,
            order=order,
            period_start=period_start,
            period_end=period_start + timedelta(days=period),
            renewal=renewal,
        )
        # Recorded when its period began (a renewal is paid about then).
        await AccessOrder.filter(order=order).update(created_at=period_start)
        if not renewal:  # the order that started it
            await AccessGrant.filter(id=grant.id).update(order_id=order.id)
        period_start += timedelta(days=period)
    return grant


async def test_mrr_is_the_last_paid_order_per_active_timed_access_scaled_to_30_days(portal):
    seller = await make_seller(portal)
    tenant = seller.tenant
    now = datetime(2026, 3, 20, 15, tzinfo=UTC)
    monthly = await _variation(tenant, "VIP", 30, 3000)
    quarterly = await _variation(tenant, "VIP+", 90, 9000)
    # From 8 Feb: 30 days at R$ 30, renewed on 10 Mar at R$ 27 (a coupon).
    await _access(
        tenant,
        monthly,
        "400000000000000001",
        now - timedelta(days=40),
        60,
        orders=[(3000, 30, False, "delivered"), (2700, 30, True, "delivered")],
    )
    # From 10 Mar: 90 days at R$ 90, so R$ 30,00 a month.
    orders = [(9000, 90, False, "delivered")]
    await _access(
        tenant, quarterly, "400000000000000002", now - timedelta(days=10), 90, orders=orders
    )
    # Given by hand (no order): an active subscriber worth R$ 0.
    await _access(tenant, monthly, "400000000000000003", now - timedelta(days=1), 30)
    # For good: not a subscriber. Refunded and revoked on 16 Mar: neither.
    orders = [(3000, 30, False, "delivered")]
    await _access(
        tenant, monthly, "400000000000000004", now - timedelta(days=5), None, orders=orders
    )
    orders = [(3000, 30, False, "refunded")]
    revoked = await _access(
        tenant,
        monthly,
        "400000000000000005",
        now - timedelta(days=5),
        30,
        orders=orders,
        status="revoked",
    )
    await AccessGrant.filter(id=revoked.id).update(updated_at=now - timedelta(days=4))
    points = await access_stats.mrr_series(tenant.id, now)
    assert [p.label for p in points[-3:]] == ["01/26", "02/26", "03/26"]
    assert len(points) == 12 and points[-1].at == now
    assert (points[-1].mrr_cents, points[-1].active, points[-1].renewals) == (2700 + 3000, 3, 1)
    # At the end of February only the first access had started: its first order, R$ 30,00.
    assert (points[-2].mrr_cents, points[-2].active, points[-2].renewals) == (3000, 1, 0)
    assert (points[-3].mrr_cents, points[-3].active) == (0, 0)


async def test_the_page_shows_mrr_its_definition_and_a_12_month_chart(portal):
    seller = await make_seller(portal)
    now = datetime.now(UTC)
    quarterly = await _variation(seller.tenant, "VIP+", 90, 9000)
    orders = [(9000, 90, False, "delivered")]
    await _access(seller.tenant, quarterly, "400000000000000009", now, 90, orders=orders)
    status, page = await seller.text("/subscribers")
    assert status == 200
    assert '<strong id="mrr">R$ 30,00</strong>' in page
    assert '<strong id="active-count">1</strong>' in page
    assert 'id="mrr-chart"' in page and page.count('class="bar"') == 12
    assert "convertido para 30 dias" in page  # the definition is on the page
    assert 'id="nav-subscribers"' in page
    english = await make_seller(portal, "Store", locale="en")
    _, page = await english.text("/subscribers")
    assert "Monthly recurring revenue" in page and "scaled to 30 days" in page
    assert "Ending within 7 days (0)" in page


async def test_tabs_split_active_ending_soon_and_ended(portal):
    seller = await make_seller(portal)
    t = seller.tenant
    now = datetime.now(UTC)
    v = await _variation(t)
    await _access(t, v, "500000000000000001", now - timedelta(days=2), 30, name="Longe")
    await _access(t, v, "500000000000000002", now - timedelta(days=25), 30, name="Perto")
    await _access(t, v, "500000000000000003", now - timedelta(days=40), 30, status="ended")
    await AccessGrant.create(  # given by hand, no product, for good
        tenant=t, buyer_discord_id="500000000000000004", guild_id=GUILD, starts_at=now
    )
    counts = await access_stats.tab_counts(t.id, now)
    assert counts == {"active": 3, "ending": 1, "ended": 1}
    _, page = await seller.text("/subscribers")
    assert "Concedido à mão (0 cargo(s))" in page and "Para sempre" in page
    _, page = await seller.text("/subscribers?tab=ending")
    assert "500000000000000002" in page and "500000000000000001" not in page
    _, page = await seller.text("/subscribers?tab=ended")
    assert "500000000000000003" in page and "500000000000000002" not in page
    _, page = await seller.text("/subscribers?tab=nonsense&page=99999999999999")
    assert "500000000000000001" not in page or "500000000000000002" in page  # no crash


async def test_staff_extend_and_revoke_change_the_row_and_are_audited(portal):
    seller = await make_seller(portal)
    t = seller.tenant
    now = datetime.now(UTC)
    v = await _variation(t)
    grant = await _access(t, v, "600000000000000001", now - timedelta(days=20), 30)
    ends = grant.ends_at
    await AccessGrant.filter(id=grant.id).update(
        reminded_3d_at=now, next_due_at=None, claim="stale"
    )
    resp = await seller.post(f"/accesses/{grant.id}/extend?tab=ending", {"days": "15"})
    assert resp.status_code == 302 and resp.headers["Location"] == "/subscribers?tab=ending"
    grant = await AccessGrant.get(id=grant.id)
    assert grant.ends_at == ends + timedelta(days=15)  # from the current end, not today
    assert grant.reminded_3d_at is None and grant.next_due_at is not None
    assert grant.claim is None  # a worker holding the old state writes nothing
    assert grant.status == AccessStatus.ACTIVE
    entry = await AuditLog.get(action="access.extended", target_id=str(grant.id))
    assert entry.tenant_id == t.id and entry.after["days"] == 15
    for bad in ("0", "3651", "abc", "9" * 50):
        await seller.post(f"/accesses/{grant.id}/extend", {"days": bad})
    assert (await AccessGrant.get(id=grant.id)).ends_at == ends + timedelta(days=15)
    # Without the CSRF token: refused, nothing changes.
    resp = await seller.client.post(f"/accesses/{grant.id}/revoke", form={})
    assert resp.status_code == 403
    assert (await AccessGrant.get(id=grant.id)).status == AccessStatus.ACTIVE
    resp = await seller.post(f"/accesses/{grant.id}/revoke")
    assert resp.status_code == 302
    grant = await AccessGrant.get(id=grant.id)
    assert grant.status == AccessStatus.REVOKED and grant.ended_reason == "staff"
    assert grant.roles_removed_at is None and grant.next_due_at is not None  # engine removes
    assert await AuditLog.filter(action="access.revoked", target_id=str(grant.id)).count() == 1
    # Revoked is final for staff: neither revoked again nor extended.
    await seller.post(f"/accesses/{grant.id}/revoke")
    await seller.post(f"/accesses/{grant.id}/extend", {"days": "5"})
    assert await AuditLog.filter(action__startswith="access.").count() == 2
    # An ended access extended by staff is active again from now, roles owed again.
    ended = await _access(t, v, "600000000000000002", now - timedelta(days=40), 30, status="ended")
    await AccessGrant.filter(id=ended.id).update(roles_removed_at=now, ended_reason="expired")
    await seller.post(f"/accesses/{ended.id}/extend", {"days": "7"})
    ended = await AccessGrant.get(id=ended.id)
    assert ended.status == AccessStatus.ACTIVE and ended.ended_reason == ""
    assert ended.roles_applied_at is None and ended.roles_removed_at is None
    assert abs((ended.ends_at - now - timedelta(days=7)).total_seconds()) < 60


async def test_a_store_never_sees_or_touches_another_stores_subscribers(portal):
    a = await make_seller(portal, "Loja A")
    b = await make_seller(portal, "Loja B")
    now = datetime.now(UTC)
    v = await _variation(a.tenant)
    grant = await _access(
        a.tenant,
        v,
        "700000000000000001",
        now - timedelta(days=1),
        30,
        orders=[(3000, 30, False, "delivered")],
        name="Cliente de A",
    )
    _, page = await b.text("/subscribers")
    assert "700000000000000001" not in page and "Cliente de A" not in page
    assert '<strong id="mrr">R$ 0,00</strong>' in page
    for tab in ("active", "ending", "ended"):
        assert "700000000000000001" not in (await b.text(f"/subscribers?tab={tab}"))[1]
    assert (await b.post(f"/accesses/{grant.id}/extend", {"days": "30"})).status_code == 404
    assert (await b.post(f"/accesses/{grant.id}/revoke")).status_code == 404
    after = await AccessGrant.get(id=grant.id)
    assert after.status == AccessStatus.ACTIVE and after.ends_at == grant.ends_at
    assert not await AuditLog.filter(action__startswith="access.").exists()
    _, page = await a.text("/subscribers")
    assert "Cliente de A" in page and '<strong id="mrr">R$ 30,00</strong>' in page
