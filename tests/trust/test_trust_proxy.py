"""Issue 13 item 6: rate limits key on the real client behind the TLS proxy (`TRUSTED_PROXIES`),
and nobody else can choose their address with `X-Forwarded-For`.

Requests are driven at the ASGI level with a scope whose `client` is the TCP peer hypercorn saw.
"""

from __future__ import annotations

import pytest

from core.errors import ConfigError
from tests.helpers.portal import portal_settings
from web.portal import create_app

PROXY = "10.0.0.7"


@pytest.fixture
async def proxied_portal(db, redis_url, tmp_path):
    """A portal that believes X-Forwarded-For only from 10.0.0.0/24 (the TLS proxy)."""
    app = create_app(portal_settings(tmp_path, db, redis_url, TRUSTED_PROXIES="10.0.0.0/24"))
    async with app.test_app():
        yield app


async def _start_login(app, peer: str, forwarded_for: str) -> int:
    response = await app.test_client().get(
        "/auth/discord",
        headers={"X-Forwarded-For": forwarded_for},
        scope_base={"client": (peer, 40000)},
    )
    return response.status_code


async def test_sellers_behind_the_proxy_do_not_lock_each_other_out(proxied_portal):
    # 21 different sellers log in within 5 minutes, all through the proxy.
    statuses = [await _start_login(proxied_portal, PROXY, f"198.51.100.{n}") for n in range(1, 22)]
    assert statuses == [302] * 21
    # The limit still holds per real client: one client hammering is stopped, even when it
    # sends its own X-Forwarded-For (the proxy appends the address it saw; that one counts).
    own = [
        await _start_login(proxied_portal, PROXY, f"203.0.113.{n}, 198.51.100.99")
        for n in range(21)
    ]
    assert own[:20] == [302] * 20 and own[20] == 429
    # ...and that did not lock out the others.
    assert await _start_login(proxied_portal, PROXY, "198.51.100.1") == 302


async def test_untrusted_peer_cannot_dodge_the_limit_with_x_forwarded_for(proxied_portal):
    attacker = "203.0.113.9"  # not the proxy: reaches the portal directly
    statuses = [await _start_login(proxied_portal, attacker, f"192.0.2.{n}") for n in range(1, 23)]
    assert statuses[:20] == [302] * 20 and statuses[20:] == [429, 429]
    # Nor can it lock out a real client by naming that client's address.
    assert await _start_login(proxied_portal, PROXY, "192.0.2.1") == 302


async def test_without_trusted_proxies_x_forwarded_for_is_ignored(db, redis_url, tmp_path):
    app = create_app(portal_settings(tmp_path, db, redis_url))
    assert app.config["VITRINE_SETTINGS"].trusted_proxies == ()
    async with app.test_app():
        statuses = [await _start_login(app, PROXY, f"198.51.100.{n}") for n in range(1, 22)]
    assert statuses[:20] == [302] * 20 and statuses[20] == 429


@pytest.mark.parametrize("value", ["nonsense", "10.0.0.0/33", "10.0.0.1,,::1/200"])
def test_malformed_trusted_proxies_fails_at_start_naming_the_variable(tmp_path, value):
    with pytest.raises(ConfigError) as exc:
        portal_settings(
            tmp_path, "sqlite://x.sqlite3", "redis://127.0.0.1:1/0", TRUSTED_PROXIES=value
        )
    assert "TRUSTED_PROXIES" in str(exc.value)


def test_trusted_proxies_accepts_addresses_and_networks(tmp_path):
    settings = portal_settings(
        tmp_path,
        "sqlite://x.sqlite3",
        "redis://127.0.0.1:1/0",
        TRUSTED_PROXIES=" 127.0.0.1, 10.0.0.0/8 ,::1 ",
    )
    assert [str(n) for n in settings.trusted_proxies] == ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]


def test_only_peers_inside_trusted_proxies_are_believed():
    import ipaddress

    from web.proxy import TrustedProxyMiddleware

    check = TrustedProxyMiddleware(None, [ipaddress.ip_network("10.0.0.0/24")]).is_trusted
    assert check(("10.0.0.7", 1)) and check(("::ffff:10.0.0.7", 1))  # dual-stack socket
    assert not check(("10.0.1.7", 1)) and not check(("::1", 1))
    assert not check(None) and not check(("", 0)) and not check(("unix-socket", 0))
    assert not TrustedProxyMiddleware(None, []).is_trusted(("10.0.0.7", 1))
