"""The gateway runs retention itself every ``retention_interval_seconds``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta

import pytest

from gateway import bootstrap
from gateway.client import AgencyClient
from gateway.config import Settings
from gateway.domain import kinds
from gateway.store.models import StoredMessage
from gateway.testing import resident_id
from tests.e2e.conftest import Running
from tests.e2e.test_retention import _enrolled, _released

Clients = Callable[[str], AgencyClient]


@pytest.fixture(scope="module")
def gateway_settings(settings: Settings) -> Settings:
    return replace(settings, retention_interval_seconds=0.5)


def test_the_gateway_purges_expired_payloads_on_its_own(running: Running, client: Clients) -> None:
    person = resident_id()
    long_ago = date.today() - timedelta(days=9 * 365)
    judicial = client("judicial")
    receipts = [
        judicial.submit(kinds.ROSTER_CHANGE, _enrolled(person, long_ago)),
        judicial.submit(kinds.ROSTER_CHANGE, _released(person, long_ago + timedelta(days=300))),
    ]
    store = bootstrap.open_store(running.settings)
    deadline = time.monotonic() + 30
    try:
        while True:
            with store.transaction() as session:
                payloads = [
                    session.get(StoredMessage, ("judicial", r.mid)).payload  # type: ignore[union-attr]
                    for r in receipts
                ]
            if payloads == [b"", b""] or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    finally:
        store.engine.dispose()
    assert payloads == [b"", b""]
