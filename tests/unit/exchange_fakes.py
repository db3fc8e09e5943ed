"""A stand-in for the gateway's Exchange stub, for unit tests of the agency side:
an inbox (Subscribe) that hands out given deliveries and records every
settlement request, and a SubmitStream/Submit that answers from a script."""

from __future__ import annotations

import hashlib
import queue
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


_END = object()


class FakeSubscribeCall:
    """A Subscribe stream: the deliveries, then ``error`` if any; settlement
    requests are answered (after ``exchange.gate`` for the first) until the
    client ends its requests or cancels."""

    def __init__(
        self, exchange: FakeExchange, requests: Iterator[exchange_pb2.SubscribeRequest]
    ) -> None:
        self.cancelled = threading.Event()
        self._out: queue.Queue[object] = queue.Queue()
        for delivery in exchange.deliveries:
            self._out.put(exchange_pb2.SubscribeResponse(delivery=delivery))
        if exchange.receive_error is not None:
            self._out.put(exchange.receive_error)
        self._thread = threading.Thread(target=self._answer, args=(exchange, requests))
        self._thread.start()

    def _answer(
        self, exchange: FakeExchange, requests: Iterator[exchange_pb2.SubscribeRequest]
    ) -> None:
        next(requests, None)  # the opening request
        for request in requests:
            if exchange.gate is not None and not exchange.first_out.is_set():
                exchange.first_out.set()
                exchange.gate.wait()
            if exchange.refuse_acknowledge is not None:
                self._out.put(exchange.refuse_acknowledge)
                continue
            exchange.acknowledgements.append(
                exchange_pb2.AcknowledgeRequest(
                    delivery_ids=request.delivery_ids,
                    rejected_delivery_ids=request.rejected_delivery_ids,
                )
            )
            settled = exchange_pb2.Settled(
                delivery_ids=request.delivery_ids,
                rejected_delivery_ids=request.rejected_delivery_ids,
            )
            self._out.put(exchange_pb2.SubscribeResponse(settled=settled))
        self._out.put(_END)

    def __iter__(self) -> Iterator[exchange_pb2.SubscribeResponse]:
        while (item := self._out.get()) is not _END:
            if isinstance(item, grpc.RpcError):
                raise item
            yield item  # type: ignore[misc]

    def cancel(self) -> bool:
        self.cancelled.set()
        self._out.put(FakeRpcError(grpc.StatusCode.CANCELLED))
        return True


class FakeExchange:
    """The Exchange stub of a gateway whose inbox holds ``deliveries``.

    ``receive_error`` ends the stream after the deliveries. ``gate``: the first
    settlement waits for it (``first_out`` is set while it waits).
    ``refuse_acknowledge``: a settlement ends the stream with it.
    ``submit_answers``: per SubmitStream call, a function from the envelope to its
    answer (or an exception ending the call)."""

    def __init__(
        self,
        deliveries: Iterable[envelope_pb2.Delivery] = (),
        *,
        receive_error: grpc.RpcError | None = None,
        gate: threading.Event | None = None,
        refuse_acknowledge: grpc.RpcError | None = None,
        submit_answers: Iterable[Callable[[envelope_pb2.Envelope], Any]] = (),
    ) -> None:
        self.deliveries = list(deliveries)
        self.receive_error = receive_error
        self.gate, self.first_out = gate, threading.Event()
        self.refuse_acknowledge = refuse_acknowledge
        self.acknowledgements: list[exchange_pb2.AcknowledgeRequest] = []
        self.calls: list[FakeSubscribeCall] = []
        self.submit_answers = list(submit_answers)
        self.submitted: list[list[str]] = []  # mids per SubmitStream call

    def Subscribe(
        self, requests: Iterator[exchange_pb2.SubscribeRequest], **_: Any
    ) -> FakeSubscribeCall:
        self.calls.append(FakeSubscribeCall(self, requests))
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
