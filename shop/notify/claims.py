"""Claiming due rows for one sender (alerts owed to the operators, notices owed to sellers).

A row is due when its due-time column has passed. A sender claims a batch with a random
claim token and pushes the due time `hold_s` ahead in one conditional UPDATE, so two senders
(two reconcilers) never take the same row, and a sender that crashes gives its rows back when
the hold runs out.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, TypeVar

from tortoise.models import Model

_M = TypeVar("_M", bound=Model)


async def claim_due(
    model: type[_M],
    due: str,
    claim: str,
    now: datetime,
    *,
    batch: int,
    hold_s: float,
    where: Mapping[str, Any] | None = None,
) -> list[_M]:
    """The rows of `model` whose `due` column is at or before `now` (oldest first, at most
    `batch`; only those matching the filters `where`, e.g. one store's), now claimed by this
    caller: their `claim` column holds a fresh token and `due` moved `hold_s` ahead."""
    ids = (
        await model.filter(**{f"{due}__lte": now}, **(where or {}))
        .order_by(due, "id")
        .limit(batch)
        .values_list("id", flat=True)
    )
    if not ids:
        return []
    token = secrets.token_hex(8)
    changes: dict[str, Any] = {claim: token, due: now + timedelta(seconds=hold_s)}
    await model.filter(id__in=list(ids), **{f"{due}__lte": now}).update(**changes)
    return list(await model.filter(**{claim: token}).order_by("id"))
