"""Where the tests find PostgreSQL (a server they may create and drop databases on)."""

from __future__ import annotations

import os

PG_ADMIN_URL = os.environ.get(
    "VITRINE_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"
)
