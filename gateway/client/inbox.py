"""Reading an agency's inbox: on the agency side, the one place that calls
``Exchange/Subscribe``.

An ``InboxReader`` keeps one Subscribe stream open — deliveries come in on it and
settlements go out on it, so they reach the gateway process holding the stream
even behind a per-call load balancer — and

- **checks every delivery** against the gateway's public keys (the client's
  ``gateway_keys``): the gateway's signature must verify, and its claims must
  name this agency (``sub``), the delivery's ``mid``, ``kind`` and sender
  (``snd``) and the SHA-256 of its payload. A delivery that does not is never
  handed over: it is given back — past the gateway's delivery limit it rests in
  the dead-letter queue, where an operator sees it — and reported (``refused``,
  ``on_refused``, a warning in the log). Without keys the reader does not
  open (``NoGatewayKeys``): an unchecked delivery is never handed over.
- **hands deliveries over** in the order they came: iterate the reader
  (foreground), or ``start(on_delivery)``: a thread of the reader's own hands
  each to ``on_delivery`` and acknowledges it once that returned (background);
- **settles in batches**: a delivery is acknowledged only when the caller says
  it is processed (``acknowledge``), and given back when the caller asks
  (``give_back``). One settlement request is unanswered at a time
  (``acknowledgers`` allows more); what is settled while it is out goes into the
  next, so the batches grow with the load and no timer is needed. The gateway
  answers once RabbitMQ took the settlements and its audit log recorded them;
- **stops** after ``idle_seconds`` without a delivery, after ``limit``
  deliveries, after ``timeout`` seconds in all (0: never, for each), or when the
  stream fails (``error``; iterating raises it).

``close()`` (or leaving the ``with`` block) sends what was settled, waits for
the answers, then ends the stream: deliveries left unsettled return to the
inbox and come again (``redelivered``). Deduplicate by ``mid``.
"""

from __future__ import annotations

import collections
import math
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

import grpc
import structlog

from gateway.client.submit import token_expired
from gateway.proto.silian.v1 import envelope_pb2, exchange_pb2, exchange_pb2_grpc
from gateway.security.deliveries import delivery_problem

log = structlog.get_logger(__name__)

#: Deliveries the gateway may hand over before the reader settled them.
DEFAULT_IN_FLIGHT = 100
#: Most delivery ids in one Acknowledge call.
DEFAULT_BATCH = 500
#: Longest the gateway may take to answer a settlement (a broker round trip and a
#: group commit) before the reader gives up on the stream.
ACKNOWLEDGE_TIMEOUT = 60.0

Delivery = envelope_pb2.Delivery


class NoGatewayKeys(ValueError):
    """The reader has no gateway key to check deliveries against."""

    def __init__(self, agency: str) -> None:
        super().__init__(
            f"no gateway public key to check {agency}'s deliveries with: give the gateway's "
            "JWKS (--gateway-jwks FILE, or gateway_jwks in config.toml; "
            "`silian keys gateway` prints it)"
        )


class Connection(Protocol):
    """What the reader needs of a client (``gateway.client.AgencyClient`` is one)."""

    agency: str
    #: Raw Ed25519 public keys of the gateway every delivery is checked against.
    gateway_keys: tuple[bytes, ...]
    stub: exchange_pb2_grpc.ExchangeStub

    def metadata(self) -> list[tuple[str, str]]:
        """Call metadata with a valid bearer token."""
        ...


@dataclass(frozen=True)
class Refusal:
    """A delivery the reader did not hand over (it gave it back), and why."""

    delivery: Delivery
    reason: str


def describe_refusals(refused: Sequence[Refusal]) -> list[str]:
    """One line per refused message (a refused delivery comes again until the
    delivery limit), for people."""
    lines: dict[str, str] = {}
    times: dict[str, int] = {}
    for refusal in refused:
        delivery = refusal.delivery
        times[delivery.mid] = times.get(delivery.mid, 0) + 1
        lines[delivery.mid] = (
            f"refused delivery {delivery.mid} ({delivery.kind} from {delivery.sender}): "
            f"{refusal.reason}"
        )
    return [
        line + (f" ({times[mid]} times)" if times[mid] > 1 else "") + "; given back"
        for mid, line in lines.items()
    ]


@dataclass
class _Batch:
    """One settlement request: (delivery, processed) pairs, and whether answered."""

    items: list[tuple[Delivery, bool]]
    answered: bool = False


class InboxReader:
    """One agency's inbox, read over one Subscribe stream; see the module docstring.

    ``on_refused`` is called (on the reading thread) with each refusal;
    ``on_acknowledged`` with the deliveries of each settlement the gateway took
    (on the reading thread, holding the reader's lock: keep it short, and call
    nothing of the reader from it).
    """

    def __init__(
        self,
        client: Connection,
        *,
        max_in_flight: int = DEFAULT_IN_FLIGHT,
        idle_seconds: float = 0.0,
        limit: int = 0,
        timeout: float = 0.0,
        batch: int = DEFAULT_BATCH,
        acknowledgers: int = 1,
        on_refused: Callable[[Refusal], None] | None = None,
        on_acknowledged: Callable[[list[Delivery]], None] | None = None,
    ) -> None:
        if not client.gateway_keys:
            raise NoGatewayKeys(client.agency)
        self.agency = client.agency
        self._client = client
        self._idle = idle_seconds
        self._limit = limit
        self._deadline = time.monotonic() + timeout if timeout else math.inf
        self._batch = max(batch, 1)
        self._on_refused = on_refused
        self._on_acknowledged = on_acknowledged
        #: Deliveries refused, in the order they came.
        self.refused: list[Refusal] = []
        #: Deliveries that passed the check / were handed to the caller.
        self.read = 0
        self.handed = 0
        #: Deliveries the gateway took as acknowledged / given back, and settled
        #: ids it did not hold (they come again if unsettled).
        self.acknowledged = 0
        self.returned = 0
        self.unknown = 0
        #: What ended the reader, if it failed.
        self.error: BaseException | None = None
        self._requested = 0
        self._answered = 0
        self._changed = threading.Condition()
        self._closing = threading.Event()
        self._arrived: queue.Queue[Delivery | None] = queue.Queue()
        self._settling: queue.Queue[tuple[Delivery, bool] | None] = queue.Queue()
        self._max_in_flight = max_in_flight
        #: Settlement batches sent and not answered yet, oldest first (the
        #: gateway answers them in order).
        self._unanswered: collections.deque[_Batch] = collections.deque()
        self._requests: queue.Queue[exchange_pb2.SubscribeRequest | None] = queue.Queue()
        self._stream = self._open()
        self._acknowledgers = [
            threading.Thread(target=self._settle, name=f"ack-{self.agency}", daemon=True)
            for _ in range(max(acknowledgers, 1))
        ]
        self._threads = [
            threading.Thread(target=self._read, name=f"inbox-{self.agency}", daemon=True),
            *self._acknowledgers,
        ]
        for thread in self._threads:
            thread.start()

    # handing over -------------------------------------------------------------------

    def __iter__(self) -> Iterator[Delivery]:
        """The checked deliveries, until the reader stops (see the module
        docstring); raises the error that ended it, if one did."""
        while not self._limit or self.handed < self._limit:
            wait = min(self._idle or math.inf, self._deadline - time.monotonic())
            if wait <= 0:
                return
            try:
                delivery = self._arrived.get(timeout=None if wait == math.inf else wait)
            except queue.Empty:
                return
            if delivery is None:
                self._arrived.put(None)  # the end stays the end
                if self.error is not None:
                    raise self.error
                return
            self.handed += 1
            yield delivery

    def start(self, on_delivery: Callable[[Delivery], None]) -> None:
        """Hand every delivery to ``on_delivery`` on a thread of the reader's own,
        acknowledging each once ``on_delivery`` returned. An exception it raises
        ends the reader (``error``)."""

        def deliver() -> None:
            try:
                for delivery in self:
                    on_delivery(delivery)
                    self.acknowledge(delivery)
            except Exception as err:  # kept in error, not lost with the thread
                self._fail(err)

        thread = threading.Thread(target=deliver, name=f"deliver-{self.agency}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def waiting(self) -> int:
        """Deliveries read and checked, not yet handed over."""
        return self.read - self.handed

    # settling ------------------------------------------------------------------------

    def acknowledge(self, delivery: Delivery) -> None:
        """``delivery`` is processed: it leaves the inbox with the next Acknowledge call."""
        self._request(delivery, processed=True)

    def give_back(self, delivery: Delivery) -> None:
        """``delivery`` could not be processed: it goes back to the inbox (and to
        the dead-letter queue past the delivery limit) with the next call."""
        self._request(delivery, processed=False)

    def flush(self) -> None:
        """Block until the gateway answered every settlement asked for so far;
        raises the error that ended the reader, if one did."""
        with self._changed:
            self._changed.wait_for(lambda: self.error is not None or self._settled_asked())
        if self.error is not None:
            raise self.error

    def wait_for(self, condition: Callable[[], bool], timeout: float | None = None) -> bool:
        """Block until ``condition()`` holds, the reader failed, or ``timeout``
        seconds passed; returns whether ``condition()`` holds. It is checked
        holding the reader's lock whenever a settlement is answered."""
        with self._changed:
            self._changed.wait_for(lambda: self.error is not None or condition(), timeout)
            return condition()

    def all_settled(self) -> bool:
        """Whether every delivery handed over or refused was settled and the
        gateway answered."""
        return self._settled_asked() and self._requested >= self.handed + len(self.refused)

    def _settled_asked(self) -> bool:
        return self._answered >= self._requested

    def _request(self, delivery: Delivery, *, processed: bool) -> None:
        with self._changed:
            self._requested += 1
        self._settling.put((delivery, processed))

    # the reader's threads ------------------------------------------------------------

    def _open(self) -> Any:
        """A new Subscribe stream (and its queue of requests), with a fresh token."""
        self._requests = queue.Queue()
        self._requests.put(exchange_pb2.SubscribeRequest(max_in_flight=self._max_in_flight))
        return self._client.stub.Subscribe(
            iter(self._requests.get, None), metadata=self._client.metadata()
        )

    def _reopen(self) -> None:
        """Go on in a new stream: settlements still unanswered on the old one are
        answered as not settled (their deliveries come again, redelivered)."""
        with self._changed:
            old = self._requests
            for batch in self._unanswered:
                if not batch.answered:
                    batch.answered = True
                    self._answered += len(batch.items)
            self._unanswered.clear()
            self._stream = self._open()
            self._changed.notify_all()
        old.put(None)

    def _read(self) -> None:
        try:
            while True:
                try:
                    for response in self._stream:
                        if response.HasField("settled"):
                            self._answer(response.settled)
                        else:
                            self._check(response.delivery)
                    return
                except grpc.RpcError as err:
                    if self._closing.is_set() or not token_expired(err):
                        raise
                # The gateway ends a stream when its token expires: go on with a
                # fresh one. (Deliveries held unsettled on the old stream come again.)
                self._reopen()
                if self._closing.is_set():
                    self._stream.cancel()
        except grpc.RpcError as err:
            if not self._closing.is_set():
                self._fail(err)
        except Exception as err:  # kept in error, not lost with the thread
            self._fail(err)
        finally:
            self._arrived.put(None)

    def _check(self, delivery: Delivery) -> None:
        reason = delivery_problem(delivery, self.agency, self._client.gateway_keys)
        if reason is None:
            self.read += 1
            self._arrived.put(delivery)
            return
        refusal = Refusal(delivery, reason)
        log.warning(
            "delivery.refused",
            agency=self.agency,
            mid=delivery.mid,
            sender=delivery.sender,
            kind=delivery.kind,
            reason=reason,
        )
        with self._changed:
            self.refused.append(refusal)
        if self._on_refused is not None:
            self._on_refused(refusal)
        self.give_back(delivery)

    def _settle(self) -> None:
        """One acknowledger: sends what was settled while its previous call was out."""
        while (first := self._settling.get()) is not None:
            batch = [first]
            while len(batch) < self._batch:
                try:
                    item = self._settling.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._settling.put(None)
                    break
                batch.append(item)
            self._send(batch)
        self._settling.put(None)  # the other acknowledgers stop too

    def _send(self, items: list[tuple[Delivery, bool]]) -> None:
        """Send one settlement request and wait for its answer (or the end)."""
        batch = _Batch(items)
        with self._changed:
            if self.error is None:  # after a failure the stream is gone: nothing to settle
                self._unanswered.append(batch)
                self._requests.put(
                    exchange_pb2.SubscribeRequest(
                        delivery_ids=[d.delivery_id for d, done in items if done],
                        rejected_delivery_ids=[d.delivery_id for d, done in items if not done],
                    )
                )
                answered = self._changed.wait_for(
                    lambda: batch.answered or self.error is not None, ACKNOWLEDGE_TIMEOUT
                )
                if not answered:
                    self._fail(TimeoutError("the gateway did not answer a settlement in time"))
            if not batch.answered:
                batch.answered = True
                self._answered += len(items)
                self._changed.notify_all()

    def _answer(self, settled: exchange_pb2.Settled) -> None:
        """The gateway's answer to the oldest unanswered settlement request."""
        with self._changed:
            batch = self._unanswered.popleft()
            acknowledged = set(settled.delivery_ids)
            taken = [d for d, done in batch.items if done and d.delivery_id in acknowledged]
            self.acknowledged += len(taken)
            self.returned += len(settled.rejected_delivery_ids)
            self.unknown += len(settled.unknown_delivery_ids)
            if taken and self._on_acknowledged is not None:
                self._on_acknowledged(taken)
            batch.answered = True
            self._answered += len(batch.items)
            self._changed.notify_all()

    def _fail(self, err: BaseException) -> None:
        with self._changed:
            if self.error is None:
                self.error = err
            self._changed.notify_all()
        self._requests.put(None)
        self._stream.cancel()

    # closing ------------------------------------------------------------------------

    def close(self) -> None:
        """Send what was settled, end the stream and stop the reader's threads;
        deliveries left unsettled return to the inbox."""
        self._settling.put(None)
        current = threading.current_thread()
        for thread in self._acknowledgers:
            if thread is not current:
                thread.join()
        self._closing.set()
        self._requests.put(None)
        self._stream.cancel()
        for thread in self._threads:
            if thread is not current:
                thread.join(10)

    def __enter__(self) -> InboxReader:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
