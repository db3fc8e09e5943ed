"""The database behind the gateway. Every method is one transaction, and every
state change commits together with the audit entries that describe it."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from gateway.audit import log as audit
from gateway.audit.log import AuditEvent
from gateway.broker.relay import OutboxItem
from gateway.domain.errors import Conflict, NotFound, Unavailable
from gateway.security.keys import KeyRecord
from gateway.store.bulk import insert_rows
from gateway.store.models import (
    Agency,
    AgencyKey,
    Base,
    MessageSubject,
    OutboxRow,
    StoredMessage,
    SubjectPseudonym,
)

#: Makes the serialized, signed receipt once the acceptance's audit index is known.
ReceiptSigner = Callable[[int], bytes]


def _insert(session: Session, table: type[Base], rows: list[dict[str, Any]]) -> None:
    insert_rows(session, table, rows)


log = structlog.get_logger(__name__)


@contextmanager
def _database_errors() -> Iterator[None]:
    try:
        yield
    except DBAPIError as exc:
        raise database_unavailable(exc) from None


def database_unavailable(exc: DBAPIError) -> Unavailable:
    """The one translation of a database failure: logged with its cause, and
    answered to callers as a retryable Unavailable without it."""
    log.error("database.unavailable", error=str(exc.orig)[:200])
    return Unavailable("DATABASE_UNAVAILABLE", "the gateway's database is unavailable; retry later")


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class NewOutboxRow:
    """An outbox row to store with its message."""

    destination: str
    recipient: str
    routing_key: str
    policy_id: str
    view_sha256: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class NewMessage:
    """An accepted message with everything that must commit with it."""

    sender: str
    mid: str
    kind: str
    payload: bytes
    payload_sha256: str
    signature: str
    unit_code: str
    accepted_at: datetime
    outbox: Sequence[NewOutboxRow]
    pseudonyms: Sequence[tuple[str, str, str]]  # (recipient, pseudonym, resident_id)
    referred: Sequence[tuple[str, str]]  # (recipient, pseudonym)
    subject_keys: Sequence[str] = ()  # keyed hashes of the people the message names


class Store:
    """Repository and unit of work over one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on error."""
        with self._sessions.begin() as session:
            yield session

    # --- principals and keys -------------------------------------------------

    def add_agency(self, agency_id: str, display_name: str, role: str, actor: str) -> None:
        """Register a principal; Conflict if the id is taken."""
        try:
            with self.transaction() as session:
                session.add(
                    Agency(id=agency_id, display_name=display_name, role=role, created_at=_now())
                )
                session.flush()
                audit.append(
                    session,
                    [
                        AuditEvent(
                            audit.AGENCY_ADDED, actor, detail={"agency": agency_id, "role": role}
                        )
                    ],
                )
        except IntegrityError:
            raise Conflict("AGENCY_EXISTS", f"agency {agency_id!r} is already registered") from None

    def agencies(self) -> list[Agency]:
        with self.transaction() as session:
            return list(session.scalars(select(Agency).order_by(Agency.id)))

    def agency(self, agency_id: str) -> Agency | None:
        with self.transaction() as session:
            return session.get(Agency, agency_id)

    def add_key(self, agency_id: str, kid: str, public: bytes, actor: str) -> None:
        """Add an active key; NotFound for an unknown agency, Conflict for a known kid."""
        with self.transaction() as session:
            if session.get(Agency, agency_id) is None:
                raise NotFound("UNKNOWN_AGENCY", f"no agency {agency_id!r}")
            if session.get(AgencyKey, (agency_id, kid)) is not None:
                raise Conflict("KEY_EXISTS", f"key {kid} is already registered for {agency_id}")
            session.add(
                AgencyKey(
                    agency_id=agency_id,
                    kid=kid,
                    public_key=public,
                    created_at=_now(),
                    revoked_at=None,
                )
            )
            session.flush()
            audit.append(
                session,
                [AuditEvent(audit.KEY_ADDED, actor, detail={"agency": agency_id, "kid": kid})],
            )

    def revoke_key(self, agency_id: str, kid: str, actor: str) -> None:
        """Revoke a key from now on; NotFound if the agency has no such key."""
        with self.transaction() as session:
            key = session.get(AgencyKey, (agency_id, kid))
            if key is None:
                raise NotFound("UNKNOWN_KEY", f"agency {agency_id!r} has no key {kid}")
            key.revoked_at = key.revoked_at or _now()
            audit.append(
                session,
                [AuditEvent(audit.KEY_REVOKED, actor, detail={"agency": agency_id, "kid": kid})],
            )

    def keys_of(self, agency_id: str) -> list[AgencyKey]:
        with self.transaction() as session:
            return list(
                session.scalars(
                    select(AgencyKey)
                    .where(AgencyKey.agency_id == agency_id)
                    .order_by(AgencyKey.created_at)
                )
            )

    def key(self, agency: str, kid: str) -> KeyRecord | None:
        """KeyLookup: the key ``kid`` of ``agency``, revoked or not."""
        with self.transaction() as session:
            row = session.get(AgencyKey, (agency, kid))
            if row is None:
                return None
            return KeyRecord(
                agency=agency, kid=kid, public=row.public_key, revoked=row.revoked_at is not None
            )

    def agency_exists(self, agency: str) -> bool:
        with self.transaction() as session:
            return session.get(Agency, agency) is not None

    # --- messages ------------------------------------------------------------

    def message(self, sender: str, mid: str) -> StoredMessage | None:
        with self.transaction() as session:
            return session.get(StoredMessage, (sender, mid))

    def outbox_of(self, sender: str, mid: str) -> list[OutboxRow]:
        with self.transaction() as session:
            return list(
                session.scalars(
                    select(OutboxRow)
                    .where(OutboxRow.sender == sender, OutboxRow.mid == mid)
                    .order_by(OutboxRow.id)
                )
            )

    def accept(
        self, message: NewMessage, audit_events: Sequence[AuditEvent], receipt_for: ReceiptSigner
    ) -> StoredMessage:
        """Store a message, its outbox rows, pseudonyms and audit entries in one
        transaction. ``audit_events[0]`` must be the acceptance; its index goes
        into the receipt that ``receipt_for`` makes. If (sender, mid) exists
        already, nothing is written and the stored message is returned.
        """
        with self.transaction() as session:
            existing = self.find_message(session, message.sender, message.mid)
            if existing is not None:
                return existing
            indexes = audit.append(session, audit_events, now=message.accepted_at)
            return self.add_message(session, message, indexes[0], receipt_for(indexes[0]))

    @staticmethod
    def find_message(session: Session, sender: str, mid: str) -> StoredMessage | None:
        return session.get(StoredMessage, (sender, mid))

    @staticmethod
    def find_messages(
        session: Session, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], StoredMessage]:
        """The stored messages among these (sender, mid), in one query."""
        if not keys:
            return {}
        # Two plain IN lists use the primary key on both databases; a row-value
        # IN of hundreds of pairs plans slowly on PostgreSQL.
        wanted = set(keys)
        rows = session.scalars(
            select(StoredMessage).where(
                StoredMessage.sender.in_({sender for sender, _ in wanted}),
                StoredMessage.mid.in_({mid for _, mid in wanted}),
            )
        )
        return {(row.sender, row.mid): row for row in rows if (row.sender, row.mid) in wanted}

    def add_message(
        self, session: Session, message: NewMessage, audit_index: int, receipt: bytes
    ) -> StoredMessage:
        """Add one accepted message (see add_messages)."""
        return self.add_messages(session, [(message, audit_index, receipt)])[0]

    def add_messages(
        self, session: Session, accepted: Sequence[tuple[NewMessage, int, bytes]]
    ) -> list[StoredMessage]:
        """Add accepted messages — (message, acceptance audit index, receipt) —
        with their outbox rows, pseudonyms and subject index to the session's
        transaction, one multi-row insert per table (their audit entries are
        the caller's). Returns the stored messages (not attached to the session)."""
        stored = [
            StoredMessage(
                sender=message.sender,
                mid=message.mid,
                kind=message.kind,
                payload=message.payload,
                payload_sha256=message.payload_sha256,
                signature=message.signature,
                unit_code=message.unit_code,
                accepted_at=message.accepted_at,
                audit_index=audit_index,
                receipt=receipt,
            )
            for message, audit_index, receipt in accepted
        ]
        columns = [c.key for c in StoredMessage.__table__.columns]
        _insert(session, StoredMessage, [{c: getattr(m, c) for c in columns} for m in stored])
        _insert(
            session,
            OutboxRow,
            [
                {
                    "sender": message.sender,
                    "mid": message.mid,
                    "kind": message.kind,
                    "destination": row.destination,
                    "recipient": row.recipient,
                    "routing_key": row.routing_key,
                    "policy_id": row.policy_id,
                    "view_sha256": row.view_sha256,
                    "body": row.body,
                    "headers": dict(row.headers),
                    "created_at": message.accepted_at,
                    "published_at": None,
                    "unroutable_at": None,
                    "delivered_at": None,
                    "acknowledged_at": None,
                }
                for message, _, _ in accepted
                for row in message.outbox
            ],
        )
        _insert(
            session,
            MessageSubject,
            [
                {"subject_key": key, "sender": message.sender, "mid": message.mid}
                for message, _, _ in accepted
                for key in sorted(set(message.subject_keys))
            ],
        )
        for message, _, _ in accepted:
            if message.pseudonyms:
                self._remember_pseudonyms(session, message)
        return stored

    @staticmethod
    def _remember_pseudonyms(session: Session, message: NewMessage) -> None:
        referred = set(message.referred)
        for recipient, pseudonym, resident_id in message.pseudonyms:
            row = session.get(SubjectPseudonym, (recipient, pseudonym))
            if row is None:
                row = SubjectPseudonym(
                    recipient=recipient,
                    pseudonym=pseudonym,
                    resident_id=resident_id,
                    referred_at=None,
                )
                session.add(row)
            if (recipient, pseudonym) in referred and row.referred_at is None:
                row.referred_at = message.accepted_at

    def record_audit(self, events: Sequence[AuditEvent]) -> list[int]:
        """Append audit entries on their own (e.g. a rejected call)."""
        with self.transaction() as session:
            return audit.append(session, events)

    def referred_pseudonyms(self, recipient: str) -> set[str]:
        """Pseudonyms of the subjects referred to ``recipient``."""
        with self.transaction() as session:
            return set(
                session.scalars(
                    select(SubjectPseudonym.pseudonym).where(
                        SubjectPseudonym.recipient == recipient,
                        SubjectPseudonym.referred_at.is_not(None),
                    )
                )
            )

    @staticmethod
    def is_referred_in(session: Session, recipient: str, pseudonym: str) -> bool:
        row = session.get(SubjectPseudonym, (recipient, pseudonym))
        return row is not None and row.referred_at is not None

    def messages_about(self, subject_key: str) -> list[tuple[str, str]]:
        """(sender, mid) of every accepted message naming the subject."""
        with self.transaction() as session:
            rows = session.execute(
                select(MessageSubject.sender, MessageSubject.mid)
                .where(MessageSubject.subject_key == subject_key)
                .order_by(MessageSubject.sender, MessageSubject.mid)
            )
            return [(sender, mid) for sender, mid in rows]

    def resident_id_of_pseudonym(self, pseudonym: str) -> str | None:
        """The resident ID behind a pseudonym issued to any recipient."""
        with self.transaction() as session:
            return self.resident_id_of_pseudonym_in(session, pseudonym)

    @staticmethod
    def resident_id_of_pseudonym_in(session: Session, pseudonym: str) -> str | None:
        return session.scalars(
            select(SubjectPseudonym.resident_id).where(SubjectPseudonym.pseudonym == pseudonym)
        ).first()

    def resolve_pseudonym(self, recipient: str, pseudonym: str) -> str | None:
        with self.transaction() as session:
            row = session.get(SubjectPseudonym, (recipient, pseudonym))
            return row.resident_id if row else None

    # --- outbox (the relay's source) -----------------------------------------

    def pending(self, limit: int) -> list[OutboxItem]:
        """OutboxSource: unpublished, routable rows, oldest first.

        Like every OutboxSource method it raises Unavailable when the database
        is down, so the relay backs off and retries instead of dying."""
        with _database_errors(), self.transaction() as session:
            # Columns, not ORM objects: the relay reads thousands of rows a second.
            rows = session.execute(
                select(
                    OutboxRow.id,
                    OutboxRow.destination,
                    OutboxRow.routing_key,
                    OutboxRow.mid,
                    OutboxRow.kind,
                    OutboxRow.body,
                    OutboxRow.headers,
                )
                .where(OutboxRow.published_at.is_(None), OutboxRow.unroutable_at.is_(None))
                .order_by(OutboxRow.id)
                .limit(limit)
            )
            return [
                OutboxItem(
                    id=row.id,
                    destination=row.destination,
                    routing_key=row.routing_key,
                    mid=row.mid,
                    kind=row.kind,
                    body=row.body,
                    headers=dict(row.headers),
                )
                for row in rows
            ]

    def mark_published(self, ids: Sequence[int]) -> None:
        self._mark(ids, audit.PUBLISHED, published_at=_now())

    def mark_unroutable(self, ids: Sequence[int]) -> None:
        self._mark(ids, audit.UNROUTABLE, unroutable_at=_now())

    def _mark(self, ids: Sequence[int], event: str, **values: datetime) -> None:
        if not ids:
            return
        with _database_errors(), self.transaction() as session:
            rows = session.execute(
                select(
                    OutboxRow.id,
                    OutboxRow.mid,
                    OutboxRow.kind,
                    OutboxRow.sender,
                    OutboxRow.recipient,
                    OutboxRow.routing_key,
                )
                .where(OutboxRow.id.in_(ids))
                .order_by(OutboxRow.id)
                .with_for_update()  # in id order, as delivery records lock them
            ).all()
            session.execute(
                update(OutboxRow)
                .where(OutboxRow.id.in_(ids))
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            audit.append(
                session,
                [
                    AuditEvent(
                        event,
                        "gateway",
                        mid=row.mid,
                        kind=row.kind,
                        detail={
                            "sender": row.sender,
                            "recipient": row.recipient or "feed",
                            "routing_key": row.routing_key,
                            "outbox_id": row.id,
                        },
                    )
                    for row in rows
                ],
            )

    # --- the recipient's side ------------------------------------------------

    def mark_delivered(
        self, recipient: str, messages: Sequence[tuple[str, str]], event: str = audit.DELIVERED
    ) -> int:
        """Record, in a transaction of its own, that ``recipient`` was handed
        (``delivered``), acknowledged, or gave back (``returned``) these
        (sender, mid) deliveries, with an audit entry each; returns how many
        outbox rows changed state."""
        with self.transaction() as session:
            return self.record_delivery_batch(session, [(recipient, event, list(messages))])

    @staticmethod
    def record_delivery_batch(
        session: Session, records: Sequence[tuple[str, str, Sequence[tuple[str, str]]]]
    ) -> int:
        """Record many (recipient, event, [(sender, mid)]) at once: one query,
        one update per recipient and event, one audit append for all.

        Outbox rows are locked in id order before the audit head — the order
        the relay uses too — so the two do not deadlock on PostgreSQL."""
        now = _now()
        grouped: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for recipient, event, messages in records:
            grouped.setdefault((recipient, event), []).extend(messages)
        wanted = [(r, s, m) for (r, _), messages in grouped.items() for s, m in messages]
        # Every row of the batch is locked by one statement, in id order, as
        # the relay locks the rows it marks: rows locked group by group (or
        # in two scan orders) deadlocked with the relay under load.
        found: dict[tuple[str, str, str], dict[str, Any]] = {
            (row.recipient, row.sender, row.mid): row._asdict()
            for row in session.execute(
                select(
                    OutboxRow.id,
                    OutboxRow.recipient,
                    OutboxRow.sender,
                    OutboxRow.mid,
                    OutboxRow.kind,
                    OutboxRow.delivered_at,
                    OutboxRow.acknowledged_at,
                )
                .where(
                    OutboxRow.recipient.in_({r for r, _, _ in wanted}),
                    OutboxRow.sender.in_({s for _, s, _ in wanted}),
                    OutboxRow.mid.in_({m for _, _, m in wanted}),
                    OutboxRow.destination == "inbox",
                )
                .order_by(OutboxRow.id)
                .with_for_update()
            )
        }
        column = {audit.DELIVERED: "delivered_at", audit.ACKNOWLEDGED: "acknowledged_at"}
        changed = 0
        events: list[AuditEvent] = []
        for (recipient, event), messages in grouped.items():
            rows = {
                (sender, mid): found[(recipient, sender, mid)]
                for sender, mid in messages
                if (recipient, sender, mid) in found
            }
            unset = {
                row["id"]: row
                for row in rows.values()
                if event in column and row[column[event]] is None
            }
            if unset:
                # An acknowledgement also marks a delivery handed over, if its
                # hand-over record did not come first: one statement for both.
                session.execute(
                    update(OutboxRow)
                    .where(OutboxRow.id.in_(list(unset)))
                    .values(
                        {
                            "delivered_at": func.coalesce(OutboxRow.delivered_at, now),
                            column[event]: now,
                        }
                    )
                    .execution_options(synchronize_session=False)
                )
                for row in unset.values():  # what a later group of this batch reads
                    row["delivered_at"] = row["delivered_at"] or now
                    row[column[event]] = now
                changed += len(unset)
            events += [
                AuditEvent(
                    event,
                    recipient,
                    mid=mid,
                    kind=rows[(sender, mid)]["kind"],
                    detail={"sender": sender, "outbox_id": rows[(sender, mid)]["id"]},
                )
                for sender, mid in messages
                if (sender, mid) in rows
            ]
        audit.append(session, events, now=now)
        return changed
