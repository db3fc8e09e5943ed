"""The minute's count of failed authentications reaches the audit log: a
gateway stopped right after a flood records one ``unauthenticated`` entry for
the flooding address, with the number of calls and their reasons."""

from __future__ import annotations

import json
from collections import Counter

import grpc
import pytest
from sqlalchemy import select

from gateway import bootstrap
from gateway.config import Settings
from gateway.domain import events
from gateway.proto.silian.v1 import exchange_pb2, exchange_pb2_grpc
from gateway.store.models import AuditEntry
from gateway.testing import BackgroundGateway, register_principals

CALLS = 200


def test_a_flood_is_summarized_in_one_entry_with_its_count(settings: Settings) -> None:
    register_principals(settings)
    with BackgroundGateway(settings) as gateway, grpc.insecure_channel(gateway.target) as channel:
        stub = exchange_pb2_grpc.ExchangeStub(channel)
        codes: Counter[grpc.StatusCode] = Counter()
        for n in range(CALLS):
            with pytest.raises(grpc.RpcError) as refused:
                stub.GetStatus(
                    exchange_pb2.GetStatusRequest(mid="m"),
                    metadata=[("authorization", f"Bearer junk.{n}.x")],
                    timeout=10,
                )
            codes[refused.value.code()] += 1  # type: ignore[attr-defined]
    store = bootstrap.open_store(settings)
    with store.transaction() as session:
        rows = session.scalars(
            select(AuditEntry.entry).where(AuditEntry.actor == "anonymous")
        ).all()
    store.engine.dispose()
    entries = [json.loads(row) for row in rows]
    assert [e["event"] for e in entries] == [events.REJECTED, events.UNAUTHENTICATED]
    summary = entries[1]["detail"]
    limit = settings.max_auth_failures_per_minute
    assert codes == {
        grpc.StatusCode.UNAUTHENTICATED: limit,
        grpc.StatusCode.RESOURCE_EXHAUSTED: CALLS - limit,
    }
    assert summary["peer"] == "127.0.0.1"
    assert summary["calls"] == limit and summary["reasons"] == f"MALFORMED_TOKEN={limit}"
    assert summary["not_audited_singly"] == limit - 1
    assert summary["refused_unread"] == CALLS - limit
