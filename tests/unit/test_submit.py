"""Submitting with retries, against a fake Exchange stub: "try later" is retried
with the same mid after the gateway's hint, a bounded number of times; every
other refusal is final."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from gateway.client import submit_many, submit_one
from gateway.client.submit import retry_delay
from gateway.domain.errors import Unauthenticated
from gateway.proto.silian.v1 import envelope_pb2, exchange_pb2
from gateway.rpc.errors import to_grpc_status
from tests.unit.exchange_fakes import FakeAgency, FakeExchange, FakeRpcError

BUSY = grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
INVALID = grpc.StatusCode.INVALID_ARGUMENT.value[0]


def _envelopes(count: int) -> list[envelope_pb2.Envelope]:
    return [envelope_pb2.Envelope(mid=f"m{n}", kind="roster.change") for n in range(count)]


def _receipt(envelope: envelope_pb2.Envelope) -> exchange_pb2.SubmitStreamResponse:
    return exchange_pb2.SubmitStreamResponse(
        mid=envelope.mid, receipt=envelope_pb2.Receipt(mid=envelope.mid)
    )


def _refusal(code: int, retry_after_ms: int = 0) -> Any:
    return lambda envelope: exchange_pb2.SubmitStreamResponse(
        mid=envelope.mid,
        rejection=exchange_pb2.Rejection(code=code, reason="X", retry_after_ms=retry_after_ms),
    )


def test_try_later_answers_go_again_after_the_hint_and_the_rest_keep_their_order() -> None:
    def first(envelope: envelope_pb2.Envelope) -> exchange_pb2.SubmitStreamResponse:
        if envelope.mid == "m1":
            return _refusal(BUSY, retry_after_ms=1500)(envelope)
        if envelope.mid == "m2":
            return _refusal(INVALID)(envelope)
        return _receipt(envelope)

    exchange = FakeExchange(submit_answers=[first, _receipt])
    waits: list[float] = []
    answered: list[str] = []
    answers = submit_many(
        FakeAgency(exchange),
        _envelopes(4),
        on_answer=lambda a: answered.append(a.mid),
        wait=waits.append,
    )
    assert [a.mid for a in answers] == ["m0", "m1", "m2", "m3"]
    assert [a.HasField("receipt") for a in answers] == [True, True, False, True]
    assert exchange.submitted == [["m0", "m1", "m2", "m3"], ["m1"]]
    assert waits == [1.5]
    assert answered == ["m0", "m2", "m3", "m1"]


def test_try_later_stops_after_the_attempts_with_the_last_answer() -> None:
    exchange = FakeExchange(submit_answers=[_refusal(BUSY)] * 3)
    waits: list[float] = []
    (answer,) = submit_many(FakeAgency(exchange), _envelopes(1), max_attempts=3, wait=waits.append)
    assert answer.rejection.code == BUSY
    assert len(exchange.submitted) == 3
    assert waits == [retry_delay(0, 1), retry_delay(0, 2)] == [0.2, 0.4]


def test_a_call_that_fails_with_try_later_sends_what_it_left_unanswered_again() -> None:
    def dies_after_first(envelope: envelope_pb2.Envelope) -> Any:
        if envelope.mid == "m0":
            return _receipt(envelope)
        return FakeRpcError(grpc.StatusCode.UNAVAILABLE)

    exchange = FakeExchange(submit_answers=[dies_after_first, _receipt])
    answers = submit_many(FakeAgency(exchange), _envelopes(3), wait=lambda _: None)
    assert all(a.HasField("receipt") for a in answers)
    assert exchange.submitted[1] == ["m1", "m2"]


def test_a_call_that_fails_for_good_raises_after_answering_what_it_could() -> None:
    def refused(envelope: envelope_pb2.Envelope) -> Any:
        return FakeRpcError(grpc.StatusCode.UNAUTHENTICATED)

    answered: list[str] = []
    with pytest.raises(grpc.RpcError):
        submit_many(
            FakeAgency(FakeExchange(submit_answers=[refused])),
            _envelopes(2),
            on_answer=lambda a: answered.append(a.mid),
        )
    assert answered == []


class _Shed(FakeRpcError, grpc.Call):
    """RESOURCE_EXHAUSTED as the gateway sends it: with RetryInfo in the status details."""

    def __init__(self, delay_ms: int) -> None:
        super().__init__(grpc.StatusCode.RESOURCE_EXHAUSTED, "over the rate limit")
        info = error_details_pb2.RetryInfo()
        info.retry_delay.FromMilliseconds(delay_ms)
        detail = any_pb2.Any()
        detail.Pack(info)
        status = status_pb2.Status(code=BUSY, message="over the rate limit", details=[detail])
        self._trailing = rpc_status.to_status(status).trailing_metadata

    def trailing_metadata(self) -> Any:
        return self._trailing

    def initial_metadata(self) -> Any:
        return ()

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> float | None:
        return None

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: Any) -> bool:
        return False


class _UnaryGateway:
    """Sheds the first ``busy`` calls, then answers with a receipt."""

    def __init__(self, busy: int) -> None:
        self.busy = busy
        self.mids: list[str] = []

    def Submit(self, request: exchange_pb2.SubmitRequest, **_: Any) -> exchange_pb2.SubmitResponse:
        self.mids.append(request.envelope.mid)
        if self.busy:
            self.busy -= 1
            raise _Shed(delay_ms=2500)
        return exchange_pb2.SubmitResponse(receipt=envelope_pb2.Receipt(mid=request.envelope.mid))


def test_a_single_submit_honours_retry_info_with_the_same_mid() -> None:
    gateway = _UnaryGateway(busy=2)
    waits: list[float] = []
    receipt = submit_one(FakeAgency(gateway), _envelopes(1)[0], wait=waits.append)  # type: ignore[arg-type]
    assert receipt.mid == "m0" and gateway.mids == ["m0", "m0", "m0"]
    assert waits == [2.5, 2.5]


def test_a_single_submit_gives_up_after_the_attempts() -> None:
    with pytest.raises(grpc.RpcError) as caught:
        submit_one(
            FakeAgency(_UnaryGateway(busy=5)), _envelopes(1)[0], max_attempts=2, wait=lambda _: None
        )  # type: ignore[arg-type]
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]


class _Expired(_Shed):
    """The gateway ending a stream whose token expired: UNAUTHENTICATED, EXPIRED_TOKEN."""

    def __init__(self) -> None:
        FakeRpcError.__init__(self, grpc.StatusCode.UNAUTHENTICATED, "the stream ended")
        status = to_grpc_status(Unauthenticated("EXPIRED_TOKEN", "the stream ended"))
        self._trailing = status.trailing_metadata


def test_a_stream_ended_by_an_expired_token_goes_on_in_a_new_stream() -> None:
    def expires_after_first(envelope: envelope_pb2.Envelope) -> Any:
        return _receipt(envelope) if envelope.mid == "m0" else _Expired()

    exchange = FakeExchange(submit_answers=[expires_after_first, _receipt])
    answers = submit_many(FakeAgency(exchange), _envelopes(3), wait=lambda _: None)
    assert all(a.HasField("receipt") for a in answers)
    assert exchange.submitted[1] == ["m1", "m2"]
