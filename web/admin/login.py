"""The console's login form, on its own so that `web.admin.auth` (which answers an
unauthenticated console page with it) and `web.admin.console` (which uses auth's token
helpers) do not import each other."""

from __future__ import annotations

from quart import render_template


async def login_page(status: int = 200, error: str | None = None):
    """The token form (`status` 401 after a wrong token or a missing session)."""
    return await render_template("admin/login.html", error=error), status
