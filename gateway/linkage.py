"""Linkage hooks: what a linkage (police, procuratorate, ngo, detox, or a fifth)
adds to the core path of a message.

A linkage is found through the ``silian.linkages`` entry-point group (or
``register``) — the core never imports an adapter. For each accepted message
of a kind it handles, the gateway calls ``on_accepted`` inside the transaction
that stores the message, so state changes and the alerts they raise commit
with it; a hook that raises a GatewayError (e.g. FailedPrecondition for a
rectification of a closed finding) refuses that message alone. ``sweep`` runs
periodically for time-driven rules (deadlines, days without a check).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from importlib.metadata import entry_points
from typing import Any, Protocol

import structlog
from google.protobuf.message import Message
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.rpc.silian.v1 import payloads_pb2 as pb
from gateway.store.models import LinkageState
from gateway.store.repository import Store
from gateway.units import Units

log = structlog.get_logger(__name__)

ENTRY_POINT_GROUP = "silian.linkages"


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


class LinkageContext:
    """A linkage's view of the transaction: its own namespaced state, the
    subject key of a resident ID, the units and the current time."""

    def __init__(
        self,
        session: Session,
        linkage: str,
        *,
        subject_key: Callable[[str], str],
        units: Units,
        now: datetime,
    ) -> None:
        self._session = session
        self.linkage = linkage
        self.subject_key = subject_key
        self.units = units
        self.now = now

    @property
    def today(self) -> date:
        return self.now.astimezone(UTC).date()

    def get(self, key: str) -> dict[str, Any] | None:
        row = self._session.get(LinkageState, (self.linkage, key))
        return dict(row.value) if row else None

    def put(self, key: str, value: dict[str, Any]) -> None:
        row = self._session.get(LinkageState, (self.linkage, key))
        if row is None:
            self._session.add(
                LinkageState(linkage=self.linkage, key=key, value=value, updated_at=self.now)
            )
        else:
            row.value = value
            row.updated_at = self.now

    def resident_id_of(self, pseudonym: str) -> str | None:
        """The resident ID behind a pseudonym the gateway issued to a partner."""
        return Store.resident_id_of_pseudonym_in(self._session, pseudonym)

    def is_referred(self, recipient: str, pseudonym: str) -> bool:
        """Whether the subject behind ``pseudonym`` was referred to ``recipient``."""
        return Store.is_referred_in(self._session, recipient, pseudonym)

    def items(self, prefix: str) -> list[tuple[str, dict[str, Any]]]:
        """All (key, value) of this linkage whose key starts with ``prefix``."""
        rows = self._session.scalars(
            select(LinkageState)
            .where(LinkageState.linkage == self.linkage, LinkageState.key.startswith(prefix))
            .order_by(LinkageState.key)
        )
        return [(row.key, dict(row.value)) for row in rows]


class Linkage(Protocol):
    """What a linkage adapter provides to the core."""

    #: Unique name; also the namespace of its state.
    name: str
    #: Message kinds whose acceptance it wants to see.
    kinds: frozenset[str]

    def on_accepted(self, accepted: Accepted, ctx: LinkageContext) -> list[AlertDraft]:
        """Update state for an accepted message; may raise a GatewayError to refuse it."""
        ...

    def sweep(self, ctx: LinkageContext) -> list[AlertDraft]:
        """Time-driven rules; called periodically. Must not raise the same alert twice."""
        ...


@dataclass
class Linkages:
    """The linkages in use, by kind."""

    all: list[Linkage] = field(default_factory=list)

    def for_kind(self, kind: str) -> list[Linkage]:
        return [linkage for linkage in self.all if kind in linkage.kinds]

    def handles(self, kind: str) -> bool:
        return any(kind in linkage.kinds for linkage in self.all)


_registered: dict[str, Callable[[], Linkage]] = {}


def register(name: str, factory: Callable[[], Linkage]) -> None:
    """Make a linkage available without an entry point (tests, embedding)."""
    _registered[name] = factory


def discover(enabled: Iterable[str] | None = None) -> Linkages:
    """Linkages from the entry-point group and ``register``; ``enabled`` limits
    them by name (None: all found)."""
    factories: dict[str, Callable[[], Linkage]] = {
        point.name: point.load() for point in entry_points(group=ENTRY_POINT_GROUP)
    }
    factories.update(_registered)
    wanted = set(factories) if enabled is None else set(enabled)
    missing = wanted - set(factories)
    if missing:
        raise ValueError(
            f"unknown linkages {', '.join(sorted(missing))}; "
            f"found: {', '.join(sorted(factories)) or 'none'}"
        )
    linkages = [factories[name]() for name in sorted(wanted)]
    log.info("linkages.loaded", linkages=[linkage.name for linkage in linkages])
    return Linkages(linkages)
