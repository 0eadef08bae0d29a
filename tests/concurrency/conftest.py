"""Fixtures for the tests that race real server processes on PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator

import pytest

from territory_service.migrate import upgrade_to_head
from tests import postgres_server
from tests.conftest import postgres_admin_url


@pytest.fixture
def fresh_postgres_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A PostgreSQL database of the test's own, built by the migrations and dropped after
    (servers still connected to it included)."""
    admin_url = postgres_admin_url(request.config)
    name = f"ts_race_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    url = asyncio.run(postgres_server.create_database(admin_url, name))
    try:
        upgrade_to_head(url)
        yield url
    finally:
        asyncio.run(postgres_server.drop_database(admin_url, name))
