"""A stand-in for the gateway's Exchange stub, for unit tests of the agency side:
an inbox that hands out given deliveries and records every Acknowledge call,
and a SubmitStream/Submit that answers from a script."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc

from gateway.proto.silian.v1 import envelope_pb2, exchange_pb2
from gateway.security import generate_private_key, kid_for, public_raw, sign_gateway

#: The key the fake gateway signs deliveries with (``gateway_signed``); a
#: ``FakeAgency`` checks deliveries against it unless given other keys.
FAKE_GATEWAY_KEY = generate_private_key()


def gateway_signed(
    delivery: envelope_pb2.Delivery, recipient: str = "police"
) -> envelope_pb2.Delivery:
    """``delivery`` with the signature the gateway would give it for ``recipient``."""
    claims = {
        "iss": "silian-gateway",
        "mid": delivery.mid,
        "kind": delivery.kind,
        "sub": recipient,
        "snd": delivery.sender,
        "sha256": hashlib.sha256(delivery.payload).hexdigest(),
    }
    kid = kid_for(public_raw(FAKE_GATEWAY_KEY))
    delivery.signature = sign_gateway(FAKE_GATEWAY_KEY, kid, claims)
    return delivery


class FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str = "") -> None:
        self._code, self._details = code, details or code.name

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


class FakeReceiveCall:
    """A Receive stream: the deliveries, then ``error`` if any, then — with
    ``hold`` — nothing until cancelled, like an inbox with nothing more to give."""

    def __init__(
        self, deliveries: list[envelope_pb2.Delivery], hold: bool, error: grpc.RpcError | None
    ) -> None:
        self.deliveries, self.hold, self.error = deliveries, hold, error
        self.cancelled = threading.Event()

    def __iter__(self) -> Iterator[exchange_pb2.ReceiveResponse]:
        for delivery in self.deliveries:
            yield exchange_pb2.ReceiveResponse(delivery=delivery)
        if self.error is not None:
            raise self.error
        if self.hold:
            self.cancelled.wait()
            raise FakeRpcError(grpc.StatusCode.CANCELLED)

    def cancel(self) -> bool:
        self.cancelled.set()
        return True


class FakeExchange:
    """The Exchange stub of a gateway whose inbox holds ``deliveries``.

    ``gate``: the first Acknowledge call waits for it (``first_out`` is set while
    it waits). ``refuse_acknowledge``: every Acknowledge call fails with it.
    ``submit_answers``: per SubmitStream call, a function from the envelope to its
    answer (or an exception ending the call)."""

    def __init__(
        self,
        deliveries: Iterable[envelope_pb2.Delivery] = (),
        *,
        hold: bool = True,
        receive_error: grpc.RpcError | None = None,
        gate: threading.Event | None = None,
        refuse_acknowledge: grpc.RpcError | None = None,
        submit_answers: Iterable[Callable[[envelope_pb2.Envelope], Any]] = (),
    ) -> None:
        self.deliveries = list(deliveries)
        self.hold, self.receive_error = hold, receive_error
        self.gate, self.first_out = gate, threading.Event()
        self.refuse_acknowledge = refuse_acknowledge
        self.acknowledgements: list[exchange_pb2.AcknowledgeRequest] = []
        self.calls: list[FakeReceiveCall] = []
        self.submit_answers = list(submit_answers)
        self.submitted: list[list[str]] = []  # mids per SubmitStream call

    def Receive(self, request: exchange_pb2.ReceiveRequest, **_: Any) -> FakeReceiveCall:
        self.calls.append(FakeReceiveCall(self.deliveries, self.hold, self.receive_error))
        return self.calls[-1]

    def Acknowledge(
        self, request: exchange_pb2.AcknowledgeRequest, **_: Any
    ) -> exchange_pb2.AcknowledgeResponse:
        if self.gate is not None and not self.first_out.is_set():
            self.first_out.set()
            self.gate.wait()
        if self.refuse_acknowledge is not None:
            raise self.refuse_acknowledge
        self.acknowledgements.append(request)
        return exchange_pb2.AcknowledgeResponse(
            acknowledged=len(request.delivery_ids) + len(request.rejected_delivery_ids)
        )

    def SubmitStream(
        self, requests: Iterable[exchange_pb2.SubmitStreamRequest], **_: Any
    ) -> Iterator[exchange_pb2.SubmitStreamResponse]:
        answer = self.submit_answers.pop(0)
        envelopes = [request.envelope for request in requests]
        self.submitted.append([e.mid for e in envelopes])
        for envelope in envelopes:
            result = answer(envelope)
            if isinstance(result, Exception):
                raise result
            yield result

    @property
    def acknowledged_ids(self) -> list[list[str]]:
        return [list(request.delivery_ids) for request in self.acknowledgements]

    @property
    def returned_ids(self) -> list[str]:
        return [i for request in self.acknowledgements for i in request.rejected_delivery_ids]


@dataclass
class FakeAgency:
    """What the agency side's reader and submitter need of a client."""

    stub: FakeExchange
    agency: str = "police"
    gateway_keys: tuple[bytes, ...] = (public_raw(FAKE_GATEWAY_KEY),)

    def metadata(self) -> list[tuple[str, str]]:
        return [("authorization", "Bearer test")]
