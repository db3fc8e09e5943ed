"""Appending audit entries in the caller's transaction.

Entry encoding (stable; auditors recompute leaf hashes from it): UTF-8 JSON of
one object with the keys ``v`` (1), ``index``, ``time`` (RFC 3339, UTC,
microseconds, ``Z``), ``event``, ``actor``, ``mid``, ``kind`` and ``detail``
(an object of strings and numbers), keys sorted, no insignificant whitespace,
non-ASCII kept as UTF-8. The leaf hash is SHA-256(0x00 ‖ entry) as RFC 9162
§2.1.1 (``gateway.audit.merkle``). Entries hold digests and metadata, never
payload contents.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from json.encoder import encode_basestring as _string

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from gateway.audit.merkle import Frontier, leaf_hash
from gateway.domain.events import AuditEvent
from gateway.store.bulk import insert_rows
from gateway.store.models import AuditEntry, AuditHead, AuditNode
from gateway.store.repository import Store


def encode_entry(index: int, time: datetime, event: AuditEvent) -> bytes:
    """The canonical bytes of one entry (see the module docstring)."""
    return _encode(index, _timestamp(time), event)


def _timestamp(time: datetime) -> str:
    return time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _encode(index: int, stamp: str, event: AuditEvent) -> bytes:
    # Byte for byte what json.dumps(document, sort_keys=True, separators=(",", ":"),
    # ensure_ascii=False) writes (a test holds the two equal), at a third of its
    # cost: this runs for every entry inside the group commit.
    detail = json.dumps(
        dict(event.detail), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return (
        f'{{"actor":{_string(event.actor)},"detail":{detail},"event":{_string(event.event)},'
        f'"index":{index},"kind":{_string(event.kind)},"mid":{_string(event.mid)},'
        f'"time":"{stamp}","v":1}}'
    ).encode()


def lock_head(session: Session) -> None:
    """Take the audit head's row lock now, for the rest of the transaction.

    Every transaction that appends takes it anyway; one that reads state it
    will write back (linkage state) takes it before reading, so two replicas
    never both read a person's state and each write back their own update:
    the second reads only after the first committed."""
    session.execute(select(AuditHead.id).where(AuditHead.id == 1).with_for_update())


def append(
    session: Session, events: Sequence[AuditEvent], now: datetime | None = None
) -> list[int]:
    """Append ``events`` in the session's transaction; returns their indexes.

    The head row update takes a row lock (PostgreSQL) or the write lock
    (SQLite), so concurrent appenders — even in several gateway processes —
    get consecutive, gap-free indexes in commit order. The same transaction
    stores the Merkle subtrees the new entries complete (``AuditNode``) and the
    head's new frontier, so proofs and checkpoints never recompute the tree.
    """
    if not events:
        return []
    time = now or datetime.now(UTC)
    stamp = _timestamp(time)
    size, packed = session.execute(
        update(AuditHead)
        .where(AuditHead.id == 1)
        .values(size=AuditHead.size + len(events))
        .returning(AuditHead.size, AuditHead.frontier)
    ).one()
    first = size - len(events)
    frontier = Frontier.load(first, packed)
    entries: list[dict[str, object]] = []
    nodes: list[dict[str, object]] = []
    for index, event in enumerate(events, start=first):
        entry = _encode(index, stamp, event)
        digest = leaf_hash(entry)
        entries.append(
            {
                "idx": index,
                "created_at": time,
                "event": event.event,
                "actor": event.actor,
                "mid": event.mid,
                "kind": event.kind,
                "entry": entry,
                "leaf_hash": digest,
            }
        )
        nodes += [
            {"node": AuditNode.key(level, node), "hash": value}
            for level, node, value in frontier.append(digest)
        ]
    insert_rows(session, AuditEntry, entries)
    insert_rows(session, AuditNode, nodes)
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(frontier=frontier.pack()))
    return list(range(first, size))


def record(store: Store, events: Sequence[AuditEvent]) -> list[int]:
    """Append ``events`` in a transaction of their own (a refused call, a
    duplicate, an auditor's query); returns their indexes."""
    with store.transaction() as session:
        return append(session, events)
