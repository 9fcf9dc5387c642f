"""The demo's configuration and fixed world: a sandbox bot, guild, seller, buyer and staff
member, and the store (product, two variations, stock) upserted into the database. Used by
`vitrine demo`."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEMO_CLIENT_ID = "100000000000000042"
DEMO_CLIENT_SECRET = "vitrine-demo-oauth-client-secret"  # noqa: S105
STATE_FILE = "demo-state.json"
DEMO_BOT_TOKEN = "MTAwMDAwMDAwMDAwMDAwMDAx.demo00.vitrine-demo-bot-token-0000000000"  # noqa: S105
STORE_NAME = "Loja Demo"
PRODUCT = "Netflix"
VARIATIONS = (("1 mês", 1990), ("3 meses", 4990))
MANAGE_GUILD = 1 << 5


@dataclass(frozen=True)
class DemoConfig:
    dir: Path
    discord_port: int = 8900
    mp_port: int = 8901
    portal_port: int = 3100
    admin_port: int = 3000
    redis_url: str | None = None
    stock: int = 20

    @property
    def portal(self) -> str:
        return f"http://127.0.0.1:{self.portal_port}"

    @property
    def discord_base(self) -> str:
        return f"http://127.0.0.1:{self.discord_port}"

    @property
    def mp_base(self) -> str:
        return f"http://127.0.0.1:{self.mp_port}"

    @property
    def conf(self) -> Path:
        return self.dir / "supervisord.conf"

    @property
    def node(self) -> str:
        return "demo-" + hashlib.sha1(str(self.dir).encode()).hexdigest()[:8]  # noqa: S324


async def seed(cfg: DemoConfig, settings: Any) -> dict[str, Any]:
    """Idempotent: the sandbox world is new on every start, the database rows are upserted
    (a fresh database gets them created)."""
    from core.db import close_db, init_db
    from core.vault import TokenVault
    from fleet.models import BotInstance
    from sandbox.discord.client import DiscordSandbox
    from shop.models import Account, Product, StockItem, Tenant, Variation
    from shop.states import StockStatus
    from shop.stock import add_stock

    async with DiscordSandbox(cfg.discord_base) as dc:
        bot = await dc.create_bot(STORE_NAME, token=DEMO_BOT_TOKEN)
        seller = await dc.create_user("vendedor")
        raw = await dc.call(
            "POST",
            "/_sandbox/guilds",
            json={
                "name": "Servidor Demo",
                "owner_id": seller["id"],
                "channels": [{"name": "loja"}, {"name": "vendas"}],
                "roles": [{"name": "Cliente"}, {"name": "Equipe", "permissions": MANAGE_GUILD}],
                "bots": [bot.application_id],
            },
        )
        guild = await dc.guild(raw["id"])
        staff = await dc.buyer("equipe")
        await dc.add_member(guild, staff.id, roles=["Equipe"])
        buyer = await dc.buyer("ana", guilds=[guild])
        await dc.create_oauth_app(
            [f"{cfg.portal}/auth/callback"],
            client_id=DEMO_CLIENT_ID,
            client_secret=DEMO_CLIENT_SECRET,
        )

    vault = TokenVault(settings.token_encryption_keys)
    await init_db(settings.database_url)
    try:
        tenant = await Tenant.filter(name=STORE_NAME).order_by("id").first()
        if tenant is None:
            owner = await Account.create(discord_id=seller["id"], username="vendedor")
            tenant = await Tenant.create(owner=owner, name=STORE_NAME)
        else:
            await Account.filter(id=tenant.owner_id).update(
                discord_id=seller["id"],
                blocked=False,
            )
        tenant.guild_id = guild.id
        tenant.sales_log_channel_id = guild.channel("vendas")
        tenant.buyer_role_id = guild.role("Cliente")
        await tenant.save()
        inst = await BotInstance.filter(tenant=tenant).order_by("id").first()
        if inst is None:
            inst = await BotInstance.create(
                tenant=tenant, name=STORE_NAME, token_enc=vault.encrypt(DEMO_BOT_TOKEN)
            )
        else:
            inst.token_enc = vault.encrypt(DEMO_BOT_TOKEN)
            inst.config_version += 1
            inst.suspended = False
            await inst.save()
        product = await Product.filter(tenant=tenant, name=PRODUCT).first()
        if product is None:
            product = await Product.create(
                tenant=tenant, name=PRODUCT, description="Conta premium (demo)", max_per_order=5
            )
        variations = []
        for name, price in VARIATIONS:
            variation = await Variation.filter(product=product, name=name).first()
            if variation is None:
                variation = await Variation.create(
                    tenant=tenant, product=product, name=name, price_cents=price
                )
            have = await StockItem.filter(variation=variation, status=StockStatus.AVAILABLE).count()
            if have < cfg.stock:
                stamp = time.strftime("%Y%m%d%H%M%S")
                lines = [f"DEMO-{variation.id}-{stamp}-{n:03d}" for n in range(cfg.stock - have)]
                await add_stock(
                    vault,
                    tenant.id,
                    variation.id,
                    "\n".join(lines),
                    "demo",
                    hash_key=settings.stock_hash_key,
                )
            variations.append({"id": variation.id, "name": name, "price_cents": price})
    finally:
        await close_db()
    state = {
        "discord_base": cfg.discord_base,
        "mp_base": cfg.mp_base,
        "portal": cfg.portal,
        "admin": f"http://127.0.0.1:{cfg.admin_port}",
        "bot": {"application_id": bot.application_id, "user_id": bot.user_id, "name": bot.name},
        "guild_id": guild.id,
        "shop_channel": guild.channel("loja"),
        "seller": seller,
        "staff": staff.user,
        "buyer": buyer.user,
        "tenant_id": tenant.id,
        "instance_id": inst.id,
        "product": PRODUCT,
        "variations": variations,
    }
    (cfg.dir / "data" / STATE_FILE).write_text(json.dumps(state, indent=1))
    return state


# --- waiting --------------------------------------------------------------------------------
