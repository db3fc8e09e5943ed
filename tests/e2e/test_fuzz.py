"""Fuzzing Submit: random bytes and mutated valid envelopes never crash the
server, and every answer is a documented status."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.client import build_envelope
from gateway.domain import kinds
from gateway.proto.silian.v1 import envelope_pb2, exchange_pb2, exchange_pb2_grpc
from gateway.testing import enrolment
from tests.e2e.conftest import Running
from tests.helpers import bearer

DOCUMENTED = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.ALREADY_EXISTS,
}
FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def channel(running: Running) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(running.target) as channel:
        yield channel


@pytest.fixture(scope="module")
def metadata(running: Running) -> list[tuple[str, str]]:
    return bearer(
        running.keys["judicial"], "judicial", running.settings.gateway_id, ttl_seconds=600
    )


def _code(call: object) -> grpc.StatusCode:
    try:
        call()  # type: ignore[operator]
    except grpc.RpcError as err:
        return err.code()  # type: ignore[attr-defined, no-any-return]
    return grpc.StatusCode.OK


@FUZZ
@given(data=st.binary(max_size=2048))
def test_random_request_bytes(
    channel: grpc.Channel, metadata: list[tuple[str, str]], data: bytes
) -> None:
    raw = channel.unary_unary("/silian.v1.Exchange/Submit")
    assert _code(lambda: raw(data, metadata=metadata, timeout=10)) in DOCUMENTED


def _mutations() -> st.SearchStrategy[tuple[str, object]]:
    text_fields = st.sampled_from(["mid", "kind", "sender", "signature"])
    return st.one_of(
        st.tuples(text_fields, st.text(max_size=80)),
        st.tuples(st.just("payload"), st.binary(max_size=512)),
        st.tuples(st.just("flip"), st.integers(min_value=0, max_value=10_000)),
    )


@FUZZ
@given(mutations=st.lists(_mutations(), min_size=1, max_size=3))
def test_mutated_valid_envelopes(
    running: Running,
    channel: grpc.Channel,
    metadata: list[tuple[str, str]],
    mutations: list[tuple[str, object]],
) -> None:
    envelope = build_envelope(
        "judicial", running.keys["judicial"], kinds.ROSTER_CHANGE, enrolment()
    )
    for name, value in mutations:
        if name == "flip" and envelope.payload:
            data = bytearray(envelope.payload)
            position = int(value) % len(data)  # type: ignore[call-overload]
            data[position] ^= 0x01
            envelope.payload = bytes(data)
        elif name != "flip":
            setattr(envelope, name, value)
    stub = exchange_pb2_grpc.ExchangeStub(channel)
    request = exchange_pb2.SubmitRequest(envelope=envelope)
    assert _code(lambda: stub.Submit(request, metadata=metadata, timeout=10)) in DOCUMENTED


def test_server_still_accepts_after_fuzzing(running: Running) -> None:
    receipt = running.client("judicial").submit(kinds.ROSTER_CHANGE, enrolment())
    assert isinstance(receipt, envelope_pb2.Receipt) and receipt.audit_index > 0
