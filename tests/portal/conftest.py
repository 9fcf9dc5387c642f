"""Portal fixtures: a started portal app on the test database; settings and logged-in sellers
are in `tests.helpers.portal`."""

from __future__ import annotations

import pytest

from tests.helpers.portal import portal_settings


@pytest.fixture
async def portal(db, redis_url, tmp_path):
    """A started portal app (DB + Redis connected) on the test database."""
    from web.portal import create_app

    app = create_app(portal_settings(tmp_path, db, redis_url))
    async with app.test_app():
        yield app
