"""Submitting signed envelopes, retrying what the gateway cannot take yet: on the
agency side, the one place that calls ``Exchange/Submit`` and ``SubmitStream``.

RESOURCE_EXHAUSTED (the gateway at capacity, or the agency past its rate limit)
and UNAVAILABLE (its database or broker down, or the gateway unreachable) mean
"try later". The same envelope — the same mid — is sent again after the
gateway's hint (``google.rpc.RetryInfo`` in a call's status details,
``Rejection.retry_after_ms`` for one message on SubmitStream), but no sooner
than an exponential backoff allows, at most ``max_attempts`` times in all.
Retrying is always safe: a message the gateway in fact stored is answered with
its original receipt. A SubmitStream the gateway ended because its token
expired (UNAUTHENTICATED, ``EXPIRED_TOKEN``) goes on in a new stream with a
fresh token. Every other refusal is final.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from gateway.proto.silian.v1 import envelope_pb2, exchange_pb2, exchange_pb2_grpc

MAX_ATTEMPTS = 5
#: Longest wait between two attempts, whatever the hint.
MAX_DELAY_SECONDS = 10.0
#: The statuses that mean "try later, with the same mid".
RETRY_LATER = frozenset({grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE})
_RETRY_LATER_CODES = frozenset(code.value[0] for code in RETRY_LATER)

Answer = exchange_pb2.SubmitStreamResponse


class Submitter(Protocol):
    """What submitting needs of a client (``gateway.client.AgencyClient`` is one)."""

    stub: exchange_pb2_grpc.ExchangeStub

    def metadata(self) -> list[tuple[str, str]]:
        """Call metadata with a valid bearer token."""
        ...


def retry_delay(hint_seconds: float, attempt: int) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1, 2, …): the
    gateway's hint, but at least 0.2, 0.4, 0.8 … s and at most MAX_DELAY_SECONDS."""
    return min(max(hint_seconds, 0.1 * 2**attempt), MAX_DELAY_SECONDS)


def reason_of(err: grpc.RpcError) -> str:
    """The ``ErrorInfo`` reason in a failed call's status details ("" if none)."""
    status = rpc_status.from_call(err) if isinstance(err, grpc.Call) else None
    info = error_details_pb2.ErrorInfo()
    for detail in status.details if status else []:
        if detail.Unpack(info):
            return info.reason
    return ""


def token_expired(err: grpc.RpcError) -> bool:
    """Whether the gateway ended a stream because its token expired (a new
    stream, with a fresh token, goes on)."""
    code = err.code() if isinstance(err, grpc.Call) else None
    return code == grpc.StatusCode.UNAUTHENTICATED and reason_of(err) == "EXPIRED_TOKEN"


def retry_after(err: grpc.RpcError) -> float:
    """The ``RetryInfo`` delay in a failed call's status details, in seconds (0: none)."""
    status = rpc_status.from_call(err) if isinstance(err, grpc.Call) else None
    info = error_details_pb2.RetryInfo()
    for detail in status.details if status else []:
        if detail.Unpack(info):
            return float(info.retry_delay.ToMilliseconds()) / 1000
    return 0.0


def submit_one(
    client: Submitter,
    envelope: envelope_pb2.Envelope,
    *,
    timeout: float = 30.0,
    max_attempts: int = MAX_ATTEMPTS,
    wait: Callable[[float], None] = time.sleep,
) -> envelope_pb2.Receipt:
    """The gateway's receipt for ``envelope`` (``Submit``), retrying as the module
    docstring says. Raises grpc.RpcError with the status that ended it: a
    refusal, or "try later" still after ``max_attempts``."""
    attempt = 1
    while True:
        try:
            response = client.stub.Submit(
                exchange_pb2.SubmitRequest(envelope=envelope),
                metadata=client.metadata(),
                timeout=timeout,
            )
            return response.receipt
        except grpc.RpcError as err:
            if err.code() not in RETRY_LATER or attempt >= max_attempts:
                raise
            wait(retry_delay(retry_after(err), attempt))
        attempt += 1


def submit_many(
    client: Submitter,
    envelopes: Sequence[envelope_pb2.Envelope],
    *,
    on_answer: Callable[[Answer], None] | None = None,
    timeout: float | None = None,
    max_attempts: int = MAX_ATTEMPTS,
    wait: Callable[[float], None] = time.sleep,
) -> list[Answer]:
    """Submit ``envelopes`` over ``SubmitStream``, retrying as the module docstring
    says: the envelopes answered "try later", and those a call that failed with
    "try later" left unanswered, go again on the next call.

    Returns the final answer to each envelope, in their order: its receipt, or
    the rejection that ended it ("try later" still after ``max_attempts``).
    ``on_answer`` gets each final answer as it comes. Raises grpc.RpcError when a
    call fails for good (what it answered before went to ``on_answer``), and
    ValueError if the gateway answered a call's envelopes with fewer or more
    answers than it sent. ``timeout`` bounds each call.
    """
    answers: dict[int, Answer] = {}
    pending = list(range(len(envelopes)))
    attempt = 1
    while pending:
        later: list[int] = []
        hint = 0.0
        answered = 0
        responses = _call(client, [envelopes[i] for i in pending], timeout)
        try:
            for index, response in zip(pending, responses, strict=True):
                answered += 1
                rejection = response.rejection
                if (
                    not response.HasField("receipt")
                    and rejection.code in _RETRY_LATER_CODES
                    and attempt < max_attempts
                ):
                    later.append(index)
                    hint = max(hint, rejection.retry_after_ms / 1000)
                    continue
                answers[index] = response
                if on_answer is not None:
                    on_answer(response)
        except grpc.RpcError as err:
            again = err.code() in RETRY_LATER or token_expired(err)
            if not again or attempt >= max_attempts:
                raise
            later += pending[answered:]
            hint = max(hint, retry_after(err))
        if later:
            wait(retry_delay(hint, attempt))
        pending = later
        attempt += 1
    return [answers[index] for index in range(len(envelopes))]


def _call(
    client: Submitter, envelopes: list[envelope_pb2.Envelope], timeout: float | None
) -> Iterator[Answer]:
    requests = (exchange_pb2.SubmitStreamRequest(envelope=e) for e in envelopes)
    responses: Iterator[Answer] = client.stub.SubmitStream(
        requests, metadata=client.metadata(), timeout=timeout
    )
    return responses
