"""The buyer's active accesses in `/meus-pedidos` (issue 16): what each gives and until when
(a Discord timestamp, so every buyer reads it in their own time zone and language)."""

from __future__ import annotations

from core.i18n import t
from shop.access_stats import access_label, buyer_accesses

FIELD_MAX = 1024  # an embed field's value (https://discord.com/developers/docs/resources/message#embed-object-embed-limits)


async def access_field(tenant_id: int, buyer_id: str, locale: str) -> tuple[str, str] | None:
    """(field name, field value) listing the buyer's active accesses; None when there are none."""
    grants = await buyer_accesses(tenant_id, buyer_id)
    if not grants:
        return None
    lines = []
    for grant in grants:
        name = access_label(grant) or t("subs.buyer.by_hand", locale)
        if grant.ends_at is None:
            lines.append(t("subs.buyer.forever", locale, name=name))
        else:
            stamp = int(grant.ends_at.timestamp())
            lines.append(t("subs.buyer.until", locale, name=name, date=f"<t:{stamp}:f>"))
    value = "\n".join(lines)
    if len(value) > FIELD_MAX:
        value = value[: FIELD_MAX - 1].rsplit("\n", 1)[0]
    return t("subs.buyer.title", locale), value
