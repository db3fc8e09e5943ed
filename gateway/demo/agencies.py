"""The agencies' side of the demo: front-end processors that submit in bulk
over ``SubmitStream`` and read their inboxes, acknowledging in batches.

``Inbox`` reads on one thread and acknowledges on another: while one
Acknowledge call is in flight the next deliveries pile up, so the batches
grow with the load and no timer is needed.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import grpc

from gateway.client import AgencyClient
from gateway.proto.silian.v1 import envelope_pb2, exchange_pb2

#: google.rpc codes worth retrying with the same mid (RESOURCE_EXHAUSTED, UNAVAILABLE).
RETRYABLE = frozenset({8, 14})
MAX_ATTEMPTS = 5
IN_FLIGHT = 500
#: Longest a SubmitStream call may take (a stuck gateway fails the demo, not hangs it).
STREAM_TIMEOUT = 300.0

Key = tuple[str, str]  # (sender, mid)


@dataclass
class Outcome:
    """What the gateway answered to a batch: receipts and refusals."""

    receipts: list[envelope_pb2.Receipt] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


def submit_all(
    client: AgencyClient,
    envelopes: list[envelope_pb2.Envelope],
    on_answer: Callable[[], None],
    wait: Callable[[float], None],
) -> Outcome:
    """Submit ``envelopes`` on one SubmitStream; retry those the gateway could not
    take yet (same mid, after its RetryInfo hint, via ``wait``), up to MAX_ATTEMPTS.
    ``on_answer`` is called once per envelope settled. A failed call refuses what
    it left unanswered."""
    outcome = Outcome()
    pending = envelopes
    for _ in range(MAX_ATTEMPTS):
        responses: list[exchange_pb2.SubmitStreamResponse] = []
        try:
            responses.extend(_stream(client, pending, on_answer))
        except grpc.RpcError as err:
            answered = {r.mid for r in responses}
            outcome.refused += [
                f"{client.agency} {e.mid}: {err.code().name} {err.details()}"
                for e in pending
                if e.mid not in answered
            ]
        retry = _settle(client.agency, responses, outcome)
        if not retry:
            return outcome
        by_mid = {e.mid: e for e in pending}
        pending = [by_mid[response.mid] for response in retry]
        last = retry[-1].rejection
        wait(max(max(r.rejection.retry_after_ms for r in retry), 100) / 1000)
    outcome.refused += [
        f"{client.agency} {e.mid}: still refused after {MAX_ATTEMPTS} attempts "
        f"({last.reason}: {last.message})"
        for e in pending
    ]
    return outcome


def _settle(
    agency: str, responses: list[exchange_pb2.SubmitStreamResponse], outcome: Outcome
) -> list[exchange_pb2.SubmitStreamResponse]:
    """Record receipts and refusals in ``outcome``; returns the answers worth retrying."""
    retry = []
    for response in responses:
        rejection = response.rejection
        if response.HasField("receipt"):
            outcome.receipts.append(response.receipt)
        elif rejection.code in RETRYABLE:
            retry.append(response)
        else:
            violations = "; ".join(
                f"{v.field}: {v.description}" for v in rejection.field_violations
            )
            outcome.refused.append(
                f"{agency} {response.mid}: {rejection.reason} {rejection.message} {violations}"
            )
    return retry


def _stream(
    client: AgencyClient, envelopes: list[envelope_pb2.Envelope], on_answer: Callable[[], None]
) -> Iterator[exchange_pb2.SubmitStreamResponse]:
    requests = (exchange_pb2.SubmitStreamRequest(envelope=e) for e in envelopes)
    call = client.stub.SubmitStream(requests, metadata=client.metadata(), timeout=STREAM_TIMEOUT)
    for response in call:
        if response.HasField("receipt") or response.rejection.code not in RETRYABLE:
            on_answer()
        yield response


class Inbox:
    """One agency's inbox, read and acknowledged in the background."""

    def __init__(
        self,
        client: AgencyClient,
        on_delivery: Callable[[envelope_pb2.Delivery], None],
        on_acknowledged: Callable[[str, set[Key]], None],
    ) -> None:
        self.client = client
        self._on_delivery = on_delivery
        self._on_acknowledged = on_acknowledged
        self._changed = threading.Condition()
        self.received: set[Key] = set()
        self.acknowledged: set[Key] = set()
        self.error: BaseException | None = None
        self._to_ack: queue.Queue[tuple[str, Key] | None] = queue.Queue()
        self._stream = client.receive(max_in_flight=IN_FLIGHT)
        self._threads = [
            threading.Thread(target=self._read, name=f"inbox-{client.agency}", daemon=True),
            threading.Thread(target=self._ack, name=f"ack-{client.agency}", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _read(self) -> None:
        try:
            for response in self._stream:
                delivery = response.delivery
                key = (delivery.sender, delivery.mid)
                with self._changed:
                    first = key not in self.received
                    self.received.add(key)
                    self._changed.notify_all()
                if first:
                    self._on_delivery(delivery)
                self._to_ack.put((delivery.delivery_id, key))
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.CANCELLED:
                self._fail(err)
        except BaseException as err:  # reported by wait_for, not lost in a thread
            self._fail(err)

    def _ack(self) -> None:
        while (item := self._to_ack.get()) is not None:
            batch = [item]
            while len(batch) < IN_FLIGHT:
                try:
                    more = self._to_ack.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._to_ack.put(None)
                    break
                batch.append(more)
            try:
                self.client.acknowledge([delivery_id for delivery_id, _ in batch])
            except grpc.RpcError as err:
                self._fail(err)
                return
            with self._changed:
                fresh = {key for _, key in batch} - self.acknowledged
                self.acknowledged.update(fresh)
                self._changed.notify_all()
            self._on_acknowledged(self.client.agency, fresh)

    def _fail(self, err: BaseException) -> None:
        with self._changed:
            self.error = err
            self._changed.notify_all()

    def wait_for(self, expected: Iterable[Key], timeout: float) -> set[Key]:
        """Block until every delivery in ``expected`` was acknowledged (or ``timeout``,
        or the inbox failed); returns those still missing."""
        wanted = set(expected)
        with self._changed:
            self._changed.wait_for(
                lambda: self.error is not None or wanted <= self.acknowledged, timeout
            )
            return wanted - self.acknowledged

    def close(self) -> None:
        """Stop reading (unacknowledged deliveries return to the inbox)."""
        self._stream.cancel()
        self._to_ack.put(None)
        for thread in self._threads:
            thread.join(10)
