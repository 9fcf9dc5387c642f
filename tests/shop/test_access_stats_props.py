"""Properties of the subscribers page's MRR (issue 16), on the pure `shop.access_stats.series`:
every access counts on its own (two stores' rows, or two halves of one store, add up), an
access counts only while it is active, and its contribution is its last started order's total
scaled to 30 days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from shop.access_stats import month_ends, series

NOW = datetime(2026, 6, 15, 12, tzinfo=UTC)
MONTHS = month_ends(NOW)
DAY = timedelta(days=1)


@st.composite
def accesses(draw, first_id: int):
    """Grants with their paid periods, back to back from the start, ids from `first_id`."""
    grants, paid = [], []
    for n in range(draw(st.integers(0, 6))):
        gid = first_id + n
        start = NOW - DAY * draw(st.integers(0, 400))
        periods = draw(st.lists(st.tuples(st.integers(1, 120), st.integers(1, 50_000)), max_size=4))
        total_days = sum(d for d, _ in periods) or draw(st.integers(1, 90))
        status = draw(st.sampled_from(["active", "ended", "revoked"]))
        revoked_at = start + DAY * draw(st.integers(0, total_days))
        grants.append(
            {
                "id": gid,
                "status": status,
                "starts_at": start,
                "ends_at": start + DAY * total_days,
                "updated_at": revoked_at,
            }
        )
        at = start
        for k, (days, cents) in enumerate(periods):
            paid.append(
                {
                    "access_id": gid,
                    "period_start": at,
                    "period_end": at + DAY * days,
                    "renewal": k > 0,
                    "created_at": at,
                    "order__total_cents": cents,
                }
            )
            at += DAY * days
    return grants, paid


@given(accesses(1), accesses(1000))
def test_mrr_active_and_renewals_add_up_over_disjoint_accesses(a, b):
    both = series(MONTHS, a[0] + b[0], a[1] + b[1])
    one, other = series(MONTHS, *a), series(MONTHS, *b)
    for p, x, y in zip(both, one, other, strict=True):
        assert p.mrr_cents == x.mrr_cents + y.mrr_cents
        assert p.active == x.active + y.active
        assert p.renewals == x.renewals + y.renewals


@given(accesses(1))
def test_an_access_counts_only_while_active_and_at_its_scaled_price(rows):
    grants, paid = rows
    for grant in grants:
        alone = series(MONTHS, [grant], [o for o in paid if o["access_id"] == grant["id"]])
        for point in alone:
            end = grant["ends_at"]
            if grant["status"] == "revoked":
                end = min(end, grant["updated_at"])
            active = grant["starts_at"] <= point.at < end
            assert point.active == int(active)
            started = [
                o for o in paid if o["access_id"] == grant["id"] and o["period_start"] <= point.at
            ]
            if not active or not started:
                assert point.mrr_cents == 0
            else:
                last = max(started, key=lambda o: o["period_start"])
                days = (last["period_end"] - last["period_start"]) / DAY
                assert point.mrr_cents == round(last["order__total_cents"] * 30 / days)


def test_twelve_brasilia_months_oldest_first_the_last_measured_now():
    labels = [label for label, _, _ in MONTHS]
    assert labels[0] == "07/25" and labels[-1] == "06/26" and len(labels) == 12
    assert MONTHS[-1][2] == NOW
    assert MONTHS[-2][2] < MONTHS[-1][1]  # May is measured before June starts
