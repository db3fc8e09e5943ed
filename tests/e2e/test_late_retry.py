"""A partner's retry is always answered: a known mid with the same payload and
a valid signature by the sender's key returns the original receipt however long
after signing it arrives; the freshness window applies to new messages only."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from gateway.config import Settings
from gateway.domain import kinds
from gateway.proto.silian.v1 import envelope_pb2, exchange_pb2, exchange_pb2_grpc
from gateway.security import kid_for, public_raw, sign_message
from gateway.testing import BackgroundGateway, enrolment, register_principals
from tests.helpers import bearer

TEN_MINUTES = 600


class MovableClock:
    """The gateway's clock: real time plus an offset the test moves."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


class Partner:
    """One agency speaking raw gRPC, its token dated by the gateway's clock."""

    def __init__(self, target: str, settings: Settings, key: Ed25519PrivateKey) -> None:
        self.settings = settings
        self.key = key
        self.kid = kid_for(public_raw(key))
        self.channel = grpc.insecure_channel(target)
        self.stub = exchange_pb2_grpc.ExchangeStub(self.channel)

    def envelope(self, payload: bytes, mid: str, iat: int) -> envelope_pb2.Envelope:
        signature = sign_message(
            self.key,
            self.kid,
            mid=mid,
            kind=kinds.ROSTER_CHANGE,
            iss="judicial",
            payload=payload,
            iat=iat,
        )
        return envelope_pb2.Envelope(
            mid=mid,
            kind=kinds.ROSTER_CHANGE,
            sender="judicial",
            payload=payload,
            signature=signature,
        )

    def metadata(self, now: float) -> list[tuple[str, str]]:
        return bearer(self.key, "judicial", self.settings.gateway_id, now=now)

    def submit(self, envelope: envelope_pb2.Envelope, now: float) -> envelope_pb2.Receipt:
        request = exchange_pb2.SubmitRequest(envelope=envelope)
        response = self.stub.Submit(request, metadata=self.metadata(now), timeout=30)
        return response.receipt

    def submit_stream(
        self, envelope: envelope_pb2.Envelope, now: float
    ) -> exchange_pb2.SubmitStreamResponse:
        requests = iter([exchange_pb2.SubmitRequest(envelope=envelope)])
        answers = list(self.stub.SubmitStream(requests, metadata=self.metadata(now), timeout=30))
        assert len(answers) == 1
        return answers[0]


@pytest.fixture(scope="module")
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture(scope="module")
def partner(settings: Settings, clock: MovableClock) -> Iterator[Partner]:
    keys = register_principals(settings)
    with BackgroundGateway(settings, clock=clock) as background:
        partner = Partner(background.target, settings, keys["judicial"])
        yield partner
        partner.channel.close()


@pytest.fixture(autouse=True)
def _clock_back(clock: MovableClock) -> Iterator[None]:
    clock.offset = 0.0
    yield
    clock.offset = 0.0


def _reason(err: grpc.RpcError) -> tuple[grpc.StatusCode, str]:
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    assert status is not None
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return err.code(), info.reason  # type: ignore[attr-defined]
    raise AssertionError("no ErrorInfo")


def test_resend_ten_minutes_after_signing_returns_the_original_receipt(
    partner: Partner, clock: MovableClock
) -> None:
    signed_at = int(clock())
    envelope = partner.envelope(kinds.encode(enrolment()), str(uuid.uuid4()), signed_at)
    original = partner.submit(envelope, clock())

    clock.offset = TEN_MINUTES
    assert partner.submit(envelope, clock()) == original
    answer = partner.submit_stream(envelope, clock())
    assert answer.WhichOneof("result") == "receipt"
    assert answer.receipt == original


def test_a_new_message_signed_ten_minutes_ago_is_refused(
    partner: Partner, clock: MovableClock
) -> None:
    signed_at = int(clock())
    envelope = partner.envelope(kinds.encode(enrolment()), str(uuid.uuid4()), signed_at)

    clock.offset = TEN_MINUTES
    with pytest.raises(grpc.RpcError) as caught:
        partner.submit(envelope, clock())
    assert _reason(caught.value) == (grpc.StatusCode.INVALID_ARGUMENT, "IAT_OUT_OF_RANGE")


def test_a_late_resend_with_another_payload_is_a_reused_mid(
    partner: Partner, clock: MovableClock
) -> None:
    mid = str(uuid.uuid4())
    signed_at = int(clock())
    partner.submit(partner.envelope(kinds.encode(enrolment()), mid, signed_at), clock())

    clock.offset = TEN_MINUTES
    other = partner.envelope(kinds.encode(enrolment()), mid, signed_at)
    with pytest.raises(grpc.RpcError) as caught:
        partner.submit(other, clock())
    assert _reason(caught.value) == (grpc.StatusCode.ALREADY_EXISTS, "MID_REUSED")
