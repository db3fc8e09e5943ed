"""The database side of retention: reading roster changes, finding the
messages that name only expired people, and purging them.

Purging empties a message's payload and its outbox bodies (``b""``) and keeps
every other column — sender, mid, kind, digests, receipt, delivery times — so
receipts, status and the audit log stay as they were. A never-published
outbox row is marked unroutable so the relay does not send an empty body.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime

from sqlalchemy import delete, select, tuple_, update

from gateway.domain import kinds
from gateway.domain.retention import RosterEvent
from gateway.proto.silian.v1 import payloads_pb2 as pb
from gateway.store import sealed
from gateway.store.models import (
    LinkageState,
    MessageSubject,
    OutboxRow,
    StoredMessage,
    SubjectPseudonym,
)
from gateway.store.repository import Store

_CHUNK = 500

Message = tuple[str, str]  # (sender, mid)


def roster_events(store: Store, subject_key: Callable[[str], str]) -> Iterator[RosterEvent]:
    """The roster changes not purged yet, opened, as retention sees them. Read
    a chunk per short transaction and opened outside it, so the gateway's
    commits never wait for the whole scan."""
    after = ("", "")
    while True:
        with store.transaction() as session:
            rows = session.execute(
                select(StoredMessage.sender, StoredMessage.mid, StoredMessage.payload)
                .where(
                    StoredMessage.kind == kinds.ROSTER_CHANGE,
                    StoredMessage.payload != b"",
                    tuple_(StoredMessage.sender, StoredMessage.mid) > tuple_(*after),
                )
                .order_by(StoredMessage.sender, StoredMessage.mid)
                .limit(_CHUNK)
            ).all()
        if not rows:
            return
        for sender, mid, payload in rows:
            change = pb.RosterChange.FromString(
                store.data_keys.open(payload, sealed.message_row(sender, mid))
            )
            if change.subject.resident_id and change.effective_date:
                yield RosterEvent(
                    subject_key(change.subject.resident_id),
                    change.change_type,
                    date.fromisoformat(change.effective_date),
                )
        after = (rows[-1].sender, rows[-1].mid)


def messages_only_about(store: Store, expired: set[str]) -> list[Message]:
    """(sender, mid) of the unpurged messages that name someone in ``expired``
    and nobody else."""
    if not expired:
        return []
    with store.transaction() as session:
        candidates: set[Message] = set()
        keys = sorted(expired)
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            candidates.update(
                (sender, mid)
                for sender, mid in session.execute(
                    select(MessageSubject.sender, MessageSubject.mid).where(
                        MessageSubject.subject_key.in_(chunk)
                    )
                )
            )
        named: dict[Message, set[str]] = {}
        ordered = sorted(candidates)
        for start in range(0, len(ordered), _CHUNK):
            pairs = ordered[start : start + _CHUNK]
            for sender, mid, key in session.execute(
                select(MessageSubject.sender, MessageSubject.mid, MessageSubject.subject_key).where(
                    tuple_(MessageSubject.sender, MessageSubject.mid).in_(pairs)
                )
            ):
                named.setdefault((sender, mid), set()).add(key)
            for sender, mid in session.execute(
                select(StoredMessage.sender, StoredMessage.mid).where(
                    tuple_(StoredMessage.sender, StoredMessage.mid).in_(pairs),
                    StoredMessage.payload == b"",
                )
            ):
                named.pop((sender, mid), None)  # purged already
    return sorted(message for message, people in named.items() if people <= expired)


def purge_messages(store: Store, messages: Sequence[Message], now: datetime) -> dict[Message, str]:
    """Empty the payloads and outbox bodies of ``messages``, a chunk per
    transaction; returns the kind of each."""
    purged: dict[Message, str] = {}
    for start in range(0, len(messages), _CHUNK):
        chunk = list(messages[start : start + _CHUNK])
        with store.transaction() as session:
            pair = tuple_(StoredMessage.sender, StoredMessage.mid)
            rows = session.execute(
                select(StoredMessage.sender, StoredMessage.mid, StoredMessage.kind).where(
                    pair.in_(chunk)
                )
            )
            purged.update({(sender, mid): kind for sender, mid, kind in rows})
            session.execute(update(StoredMessage).where(pair.in_(chunk)).values(payload=b""))
            outbox = tuple_(OutboxRow.sender, OutboxRow.mid)
            session.execute(
                update(OutboxRow)
                .where(outbox.in_(chunk), OutboxRow.published_at.is_(None))
                .values(unroutable_at=now)
            )
            session.execute(update(OutboxRow).where(outbox.in_(chunk)).values(body=b""))
    return purged


def forget_people(store: Store, expired: set[str], subject_key: Callable[[str], str]) -> int:
    """Delete the pseudonyms and the linkage state of the ``expired`` people
    (state keys end with the subject key); returns the rows deleted."""
    if not expired:
        return 0
    with store.transaction() as session:
        rows = session.execute(
            select(
                SubjectPseudonym.recipient,
                SubjectPseudonym.pseudonym,
                SubjectPseudonym.sealed_resident_id,
            )
        ).all()
    theirs = [
        (recipient, pseudonym)
        for recipient, pseudonym, sealed_id in rows
        if subject_key(
            store.data_keys.open_text(sealed_id, sealed.pseudonym_row(recipient, pseudonym))
        )
        in expired
    ]
    deleted = 0
    with store.transaction() as session:
        for recipient, pseudonym in theirs:
            result = session.execute(
                delete(SubjectPseudonym).where(
                    SubjectPseudonym.recipient == recipient,
                    SubjectPseudonym.pseudonym == pseudonym,
                )
            )
            deleted += result.rowcount  # type: ignore[attr-defined]
        for key in sorted(expired):
            result = session.execute(delete(LinkageState).where(LinkageState.key.endswith(key)))
            deleted += result.rowcount  # type: ignore[attr-defined]
    return deleted
