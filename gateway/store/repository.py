"""The database behind the gateway: every table's reads and writes.

``Store.transaction()`` is the unit of work: callers (the service, the audit
log) put a message, its outbox rows and the audit entries that describe them
into one transaction. It is also the one place where database failures become
errors callers understand: ``Unavailable`` (retry later), ``DuplicateRow``
(a unique key was taken, e.g. by another gateway process) or ``RowRefused``
(the database refused a value: retrying will not help).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    IntegrityError,
    NotSupportedError,
    ProgrammingError,
)
from sqlalchemy.orm import Session, sessionmaker

from gateway.domain.errors import Conflict, NotFound, Unavailable
from gateway.domain.messages import NewMessage
from gateway.domain.outbox import OutboxItem
from gateway.security.atrest import DataKeys
from gateway.security.keys import KeyRecord
from gateway.store import sealed
from gateway.store.bulk import insert_rows
from gateway.store.models import (
    Agency,
    AgencyKey,
    MessageSubject,
    OutboxRow,
    StoredMessage,
)
from gateway.store.subjects import SubjectQueries

log = structlog.get_logger(__name__)


class DuplicateRow(Exception):
    """A write hit a unique key that another transaction holds (e.g. the same
    mid stored at the same moment through another gateway process)."""


class RowRefused(Exception):
    """The database refused what a transaction wrote (a value too long for its
    column, say): the data is at fault, not the database, so retrying as is
    cannot succeed."""


def database_unavailable(exc: DBAPIError) -> Unavailable:
    """The one translation of a database failure: logged with its cause, and
    answered to callers as a retryable Unavailable without it."""
    log.error("database.unavailable", error=str(exc.orig)[:200])
    return Unavailable("DATABASE_UNAVAILABLE", "the gateway's database is unavailable; retry later")


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class MarkedRow:
    """An outbox row whose state a mark changed (what its audit entry names)."""

    id: int
    mid: str
    kind: str
    sender: str
    recipient: str
    routing_key: str
    publish_attempts: int
    created_at: datetime


@dataclass(frozen=True)
class DeliveryRow:
    """A recipient's outbox row found for a delivery record."""

    id: int
    recipient: str
    sender: str
    mid: str
    kind: str
    #: When the message was accepted (the outbox row made).
    created_at: datetime | None = None
    #: Whether this record set the row's timestamp (its first hand-over or acknowledgement).
    first: bool = False


class Store(SubjectQueries):
    """Repository and unit of work over one engine. Personal data is sealed
    with ``data_keys`` on the way in and opened on the way out
    (``gateway.store.sealed``)."""

    def __init__(self, engine: Engine, data_keys: DataKeys) -> None:
        self.engine = engine
        self.data_keys = data_keys
        self._sessions = sessionmaker(
            engine, expire_on_commit=False, info={sealed.INFO_KEY: data_keys}
        )

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on error.

        Raises ``DuplicateRow`` when a unique key was taken, ``RowRefused`` when
        the database refused a value and ``Unavailable`` when the database
        failed; every other error passes through unchanged.
        """
        try:
            with self._sessions.begin() as session:
                yield session
        except IntegrityError as exc:
            raise DuplicateRow(str(exc.orig)[:200]) from None
        except (DataError, ProgrammingError, NotSupportedError) as exc:
            raise RowRefused(str(exc.orig)[:200]) from None
        except DBAPIError as exc:
            raise database_unavailable(exc) from None

    # --- principals and keys -------------------------------------------------

    @staticmethod
    def insert_agency(session: Session, agency_id: str, display_name: str, role: str) -> None:
        """Register a principal in ``session``; Conflict if the id is taken."""
        if session.get(Agency, agency_id) is not None:
            raise Conflict("AGENCY_EXISTS", f"agency {agency_id!r} is already registered")
        session.add(Agency(id=agency_id, display_name=display_name, role=role, created_at=_now()))
        session.flush()

    @staticmethod
    def insert_key(session: Session, agency_id: str, kid: str, public: bytes) -> None:
        """Add an active key in ``session``; NotFound for an unknown agency,
        Conflict for a known kid."""
        if session.get(Agency, agency_id) is None:
            raise NotFound("AGENCY_NOT_REGISTERED", f"no agency {agency_id!r}")
        if session.get(AgencyKey, (agency_id, kid)) is not None:
            raise Conflict("KEY_EXISTS", f"key {kid} is already registered for {agency_id}")
        session.add(
            AgencyKey(
                agency_id=agency_id, kid=kid, public_key=public, created_at=_now(), revoked_at=None
            )
        )
        session.flush()

    @staticmethod
    def set_key_revoked(session: Session, agency_id: str, kid: str) -> None:
        """Revoke a key from now on (kept if revoked already); NotFound if there is none."""
        key = session.get(AgencyKey, (agency_id, kid))
        if key is None:
            raise NotFound("KEY_NOT_REGISTERED", f"agency {agency_id!r} has no key {kid}")
        key.revoked_at = key.revoked_at or _now()

    def agencies(self) -> list[Agency]:
        with self.transaction() as session:
            return list(session.scalars(select(Agency).order_by(Agency.id)))

    def agency(self, agency_id: str) -> Agency | None:
        with self.transaction() as session:
            return session.get(Agency, agency_id)

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

    def add_messages(
        self, session: Session, accepted: Sequence[tuple[NewMessage, int, bytes]]
    ) -> list[StoredMessage]:
        """Add accepted messages — (message, acceptance audit index, receipt) —
        with their outbox rows, pseudonyms and subject index to the session's
        transaction, one multi-row insert per table (their audit entries are
        the caller's). Returns the stored messages (not attached to the session,
        their payloads in clear)."""
        keys = self.data_keys
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
        insert_rows(
            session,
            StoredMessage,
            [
                {c: getattr(m, c) for c in columns}
                | {"payload": keys.seal(m.payload, sealed.message_row(m.sender, m.mid))}
                for m in stored
            ],
        )
        insert_rows(
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
                    "body": keys.seal(
                        row.body,
                        sealed.outbox_row(
                            message.sender, message.mid, row.destination, row.recipient
                        ),
                    ),
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
        insert_rows(
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
            if message.ended or message.served:
                self._follow_referrals(session, message)
        return stored

    def payload_of(self, message: StoredMessage) -> bytes:
        """The payload of a message read from the database, opened (b"" once purged)."""
        if not message.payload:
            return b""
        return self.data_keys.open(message.payload, sealed.message_row(message.sender, message.mid))

    def body_of(self, row: OutboxRow) -> bytes:
        """The body of an outbox row read from the database, opened (b"" once purged)."""
        if not row.body:
            return b""
        identity = sealed.outbox_row(row.sender, row.mid, row.destination, row.recipient)
        return self.data_keys.open(row.body, identity)

    # --- the outbox ------------------------------------------------------------

    def pending(self, limit: int) -> list[OutboxItem]:
        """Unpublished, routable outbox rows, oldest first, each counted as one
        more publish attempt (in the same statement), so a row read again after
        a crash is known to be a possible duplicate."""
        with self.transaction() as session:
            oldest = (
                select(OutboxRow.id)
                .where(OutboxRow.published_at.is_(None), OutboxRow.unroutable_at.is_(None))
                .order_by(OutboxRow.id)
                .limit(limit)
            )
            # Columns, not ORM objects: the relay reads thousands of rows a second.
            rows = session.execute(
                update(OutboxRow)
                .where(OutboxRow.id.in_(oldest.scalar_subquery()))
                .values(publish_attempts=OutboxRow.publish_attempts + 1)
                .returning(
                    OutboxRow.id,
                    OutboxRow.sender,
                    OutboxRow.recipient,
                    OutboxRow.destination,
                    OutboxRow.routing_key,
                    OutboxRow.mid,
                    OutboxRow.kind,
                    OutboxRow.body,
                    OutboxRow.headers,
                    OutboxRow.publish_attempts,
                )
                .execution_options(synchronize_session=False)
            )
            items = [
                OutboxItem(
                    id=row.id,
                    destination=row.destination,
                    routing_key=row.routing_key,
                    mid=row.mid,
                    kind=row.kind,
                    body=self.data_keys.open(
                        row.body,
                        sealed.outbox_row(row.sender, row.mid, row.destination, row.recipient),
                    ),
                    headers=dict(row.headers),
                    attempt=row.publish_attempts,
                )
                for row in rows
            ]
            return sorted(items, key=lambda item: item.id)

    @staticmethod
    def mark_outbox(session: Session, ids: Sequence[int], **values: datetime) -> list[MarkedRow]:
        """Set ``values`` (``published_at`` or ``unroutable_at``) on these rows,
        locked in id order (as delivery records lock them); returns the rows."""
        rows = session.execute(
            select(
                OutboxRow.id,
                OutboxRow.mid,
                OutboxRow.kind,
                OutboxRow.sender,
                OutboxRow.recipient,
                OutboxRow.routing_key,
                OutboxRow.publish_attempts,
                OutboxRow.created_at,
            )
            .where(OutboxRow.id.in_(ids))
            .order_by(OutboxRow.id)
            .with_for_update()
        ).all()
        session.execute(
            update(OutboxRow)
            .where(OutboxRow.id.in_(ids))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return [MarkedRow(*row) for row in rows]

    @staticmethod
    def record_deliveries(
        session: Session,
        records: Sequence[tuple[str, str, Sequence[tuple[str, str]]]],
        column: dict[str, str],
        now: datetime,
    ) -> tuple[int, list[tuple[str, str, DeliveryRow]]]:
        """Record many (recipient, event, [(sender, mid)]) at once: one query,
        one update per recipient and event. ``column`` names the timestamp each
        event sets (``delivered_at``, ``acknowledged_at``; events without one
        set nothing). Returns how many rows changed state, and (recipient,
        event, row) for every delivery found — what the audit entries name.

        Every row of the batch is locked by one statement, in id order, before
        the audit head — the order the relay uses too: rows locked group by
        group (or in two scan orders) deadlocked with the relay under load.
        """
        grouped: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for recipient, event, messages in records:
            grouped.setdefault((recipient, event), []).extend(messages)
        wanted = [(r, s, m) for (r, _), messages in grouped.items() for s, m in messages]
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
                    OutboxRow.created_at,
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
        changed = 0
        recorded: list[tuple[str, str, DeliveryRow]] = []
        for (recipient, event), messages in grouped.items():
            rows = [
                found[(recipient, sender, mid)]
                for sender, mid in messages
                if (recipient, sender, mid) in found
            ]
            unset = {
                row["id"]: row for row in rows if event in column and row[column[event]] is None
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
            recorded += [
                (
                    recipient,
                    event,
                    DeliveryRow(
                        row["id"],
                        recipient,
                        row["sender"],
                        row["mid"],
                        row["kind"],
                        row["created_at"],
                        row["id"] in unset,
                    ),
                )
                for row in rows
            ]
        return changed, recorded
