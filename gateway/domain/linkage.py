"""The linkage protocol: what a linkage (police, procuratorate, ngo, detox, or a
fifth) adds to the core path of a message.

A *linkage* is one agency's rules, shipped in its adapter folder and found
through the registry (``gateway.domain.registry``) — the core never imports an
adapter. For each accepted message of a kind it handles, the gateway calls
``on_accepted`` inside the transaction that stores the message, so state
changes and the alerts they raise commit with it; a linkage that raises a
GatewayError (e.g. FailedPrecondition for a rectification of a closed
finding) refuses that message alone. ``sweep`` runs periodically for
time-driven rules (deadlines, days without a check).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

from google.protobuf.message import Message

from gateway.domain.units import Units
from gateway.proto.silian.v1 import payloads_pb2 as pb


@dataclass(frozen=True)
class Accepted:
    """An accepted message as a linkage sees it (the sender's full payload)."""

    kind: str
    sender: str
    mid: str
    message: Message
    accepted_at: datetime


@dataclass(frozen=True)
class AlertDraft:
    """An alert a linkage wants raised; the gateway signs, routes and stores it."""

    alert_type: int  # pb.AlertType
    severity: int  # pb.Severity
    unit_code: str
    description: str
    evidence_mids: Sequence[str]
    subject: pb.Subject | None = None


class LinkageContext(Protocol):
    """What a linkage sees of the transaction it runs in: its own namespaced state
    (linkage state), the subject key of a resident ID, the units and the time.

    Writes become visible to this linkage's later reads at once and are
    stored with the message — or dropped when the message is refused.
    """

    linkage: str
    subject_key: Callable[[str], str]
    units: Units
    now: datetime

    @property
    def today(self) -> date:
        """The date of ``now`` on the bureau's calendar (``gateway.domain.calendar``)."""
        ...

    def get(self, key: str) -> dict[str, Any] | None:
        """The value stored under ``key`` (a copy), or None."""
        ...

    def put(self, key: str, value: dict[str, Any]) -> None:
        """Store ``value`` under ``key``."""
        ...

    def items(self, prefix: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every (key, value) whose key starts with ``prefix``, in key order."""
        ...

    def resident_id_of(self, pseudonym: str) -> str | None:
        """The resident ID behind a pseudonym the gateway issued to a partner."""
        ...

    def referred_among(self, recipient: str, pseudonyms: Sequence[str]) -> set[str]:
        """Those of ``pseudonyms`` whose subject was referred to ``recipient``,
        looked up at once (a record may name hundreds of people)."""
        ...


class Linkage(Protocol):
    """What a linkage adapter provides to the core."""

    #: Unique name; also the namespace of its state.
    name: str
    #: Message kinds whose acceptance it wants to see.
    kinds: frozenset[str]

    def on_accepted(self, accepted: Accepted, ctx: LinkageContext) -> list[AlertDraft]:
        """Update state for an accepted message; may raise a GatewayError to refuse it."""
        ...

    # Optional: ``state_keys(accepted, subject_key) -> Iterable[str]`` names the state keys
    # ``on_accepted`` will read, so a batch reads them all in one query.

    def sweep(self, ctx: LinkageContext) -> list[AlertDraft]:
        """Time-driven rules; called periodically. Must not raise the same alert twice."""
        ...


def state_keys(
    linkage: Linkage, accepted: Accepted, subject_key: Callable[[str], str]
) -> Iterable[str]:
    """The state keys ``linkage`` says ``on_accepted`` will read (none if it does not say)."""
    named = getattr(linkage, "state_keys", None)
    return named(accepted, subject_key) if named is not None else ()


@dataclass
class Linkages:
    """The linkages in use, by kind."""

    all: list[Linkage] = field(default_factory=list)

    def for_kind(self, kind: str) -> list[Linkage]:
        return [linkage for linkage in self.all if kind in linkage.kinds]
