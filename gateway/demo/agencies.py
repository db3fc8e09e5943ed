"""The agencies' side of the demo: front-end processors that submit in bulk
over ``SubmitStream`` and read their inboxes in the background.

Both go through the agency-side client: ``gateway.client.submit`` retries what
the gateway cannot take yet, ``gateway.client.inbox`` checks the gateway's
signature of every delivery and acknowledges in batches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import grpc

from gateway.client import AgencyClient, InboxReader
from gateway.proto.silian.v1 import envelope_pb2, exchange_pb2

#: Deliveries an inbox holds unsettled, and the most ids in one Acknowledge call.
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
    client: AgencyClient, envelopes: list[envelope_pb2.Envelope], on_answer: Callable[[], None]
) -> Outcome:
    """Submit ``envelopes`` (retrying "try later"); ``on_answer`` is called once per
    envelope settled. A failed call refuses what it left unanswered."""
    outcome = Outcome()
    answered: set[str] = set()

    def settle(response: exchange_pb2.SubmitStreamResponse) -> None:
        answered.add(response.mid)
        if response.HasField("receipt"):
            outcome.receipts.append(response.receipt)
        else:
            rejection = response.rejection
            violations = "; ".join(
                f"{v.field}: {v.description}" for v in rejection.field_violations
            )
            outcome.refused.append(
                f"{client.agency} {response.mid}: {rejection.reason} {rejection.message} "
                f"{violations}"
            )
        on_answer()

    try:
        client.submit_stream(envelopes, on_answer=settle, timeout=STREAM_TIMEOUT)
    except grpc.RpcError as err:
        outcome.refused += [
            f"{client.agency} {e.mid}: {err.code().name} {err.details()}"
            for e in envelopes
            if e.mid not in answered
        ]
    return outcome


class Inbox:
    """One agency's inbox, read and acknowledged in the background; remembers
    what it received and what the gateway took as acknowledged, by (sender, mid).
    ``on_delivery`` sees each message once (a redelivery is only acknowledged)."""

    def __init__(
        self,
        client: AgencyClient,
        on_delivery: Callable[[envelope_pb2.Delivery], None],
        on_acknowledged: Callable[[str, set[Key]], None],
    ) -> None:
        self.client = client
        self._on_delivery = on_delivery
        self._on_acknowledged = on_acknowledged
        self.received: set[Key] = set()
        self.acknowledged: set[Key] = set()
        self.reader: InboxReader = client.inbox(
            max_in_flight=IN_FLIGHT, batch=IN_FLIGHT, on_acknowledged=self._settled
        )
        self.reader.start(self._deliver)

    def _deliver(self, delivery: envelope_pb2.Delivery) -> None:
        key = (delivery.sender, delivery.mid)
        if key not in self.received:
            self.received.add(key)
            self._on_delivery(delivery)

    def _settled(self, deliveries: list[envelope_pb2.Delivery]) -> None:
        fresh = {(d.sender, d.mid) for d in deliveries} - self.acknowledged
        self.acknowledged |= fresh
        self._on_acknowledged(self.client.agency, fresh)

    @property
    def error(self) -> BaseException | None:
        return self.reader.error

    def wait_for(self, expected: Iterable[Key], timeout: float) -> set[Key]:
        """Block until every delivery in ``expected`` was acknowledged (or ``timeout``,
        or the inbox failed); returns those still missing."""
        wanted = set(expected)
        self.reader.wait_for(lambda: wanted <= self.acknowledged, timeout)
        return wanted - self.acknowledged

    def close(self) -> None:
        """Stop reading (unacknowledged deliveries return to the inbox)."""
        self.reader.close()
