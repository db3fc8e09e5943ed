"""The outbox as the relay sees it: rows to publish, and where it reports back.

The service implements OutboxSource over the database (each mark is audited
in the transaction that makes it); the broker's relay consumes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

INBOX = "inbox"
FEED = "feed"
#: AMQP header of a row published again: an earlier copy may have reached the
#: broker (the relay died between its confirm and marking the row published),
#: so whoever hands the copy over says it is redelivered.
REPUBLISHED_HEADER = "x-silian-republished"


@dataclass(frozen=True)
class OutboxItem:
    """One outbox row: one message on its way to one destination.

    ``destination`` is ``"inbox"`` (``routing_key`` = the recipient agency) or
    ``"feed"`` (``routing_key`` = ``<kind>.<unit>.<sender>``).
    """

    id: int
    destination: str
    routing_key: str
    mid: str
    kind: str
    body: bytes
    headers: dict[str, str]
    #: Relay rounds that read this row, this one included (above 1: maybe published before).
    attempt: int = 1


class OutboxSource(Protocol):
    """Where the relay takes rows from and reports back to (the database's outbox)."""

    def pending(self, limit: int) -> list[OutboxItem]:
        """At most ``limit`` rows neither published nor unroutable, oldest first.

        A row published but not yet marked (the relay crashed in between) MAY be
        returned again; it MUST then come with ``attempt`` above 1.
        """
        ...

    def mark_published(self, ids: Sequence[int]) -> None:
        """Record that the broker confirmed these rows; they MUST NOT be pending again."""
        ...

    def mark_unroutable(self, ids: Sequence[int]) -> None:
        """Record that the broker returned these rows: no queue is bound for their key.

        They MUST NOT be marked published; whether they are pending again is the
        source's decision (the relay reports every return).
        """
        ...
