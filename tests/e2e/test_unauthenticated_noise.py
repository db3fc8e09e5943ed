"""A flood of calls with bad tokens against a real gateway adds a handful of
audit entries, not one per call, and the agencies' own calls go on."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace

import grpc
import pytest
from sqlalchemy import func, select

from gateway import bootstrap
from gateway.config import Settings
from gateway.domain import kinds
from gateway.proto.silian.v1 import exchange_pb2, exchange_pb2_grpc
from gateway.security import generate_private_key, issue_token, kid_for, public_raw
from gateway.store.models import AuditEntry
from gateway.store.repository import Store
from gateway.testing import enrolment
from tests.e2e.conftest import Running

LIMIT = 50
FLOOD = 3000


@pytest.fixture(scope="module")
def gateway_settings(settings: Settings) -> Settings:
    return replace(settings, max_auth_failures_per_minute=LIMIT)


@pytest.fixture(scope="module")
def store(running: Running) -> Iterator[Store]:
    store = bootstrap.open_store(running.settings)
    yield store
    store.engine.dispose()


def _entries(store: Store) -> int:
    with store.transaction() as session:
        return session.scalar(select(func.count()).select_from(AuditEntry)) or 0


def _bad_token(n: int) -> str:
    if n % 3 == 0:
        return "not.a.jwt"
    key = generate_private_key() if n % 3 == 1 else None
    if key is None:
        return f"eyJhbGciOiJFZERTQSJ9.{n}.x"
    return issue_token(key, kid_for(public_raw(key)), issuer=f"stranger-{n}", audience="gw")


def test_a_flood_of_bad_tokens_adds_a_handful_of_audit_entries(
    running: Running, store: Store
) -> None:
    judicial = running.client("judicial")
    judicial.submit(kinds.ROSTER_CHANGE, enrolment())  # its token is now known good
    before = _entries(store)
    codes: Counter[grpc.StatusCode] = Counter()
    with grpc.insecure_channel(running.target) as channel:
        stub = exchange_pb2_grpc.ExchangeStub(channel)
        for n in range(FLOOD):
            metadata = [("authorization", f"Bearer {_bad_token(n)}")]
            try:
                stub.GetStatus(
                    exchange_pb2.GetStatusRequest(mid=str(uuid.uuid4())),
                    metadata=metadata,
                    timeout=10,
                )
            except grpc.RpcError as err:
                codes[err.code()] += 1  # type: ignore[attr-defined]
    added = _entries(store) - before
    assert codes[grpc.StatusCode.UNAUTHENTICATED] == LIMIT
    assert codes[grpc.StatusCode.RESOURCE_EXHAUSTED] == FLOOD - LIMIT
    assert 1 <= added <= 5, added
    receipt = judicial.submit(kinds.ROSTER_CHANGE, enrolment())  # the bureau goes on
    assert receipt.audit_index > 0
    judicial.close()
