"""Re-sealing personal data under the current data key (``silian keys
rotate-data-key``), in batches, while the gateway runs.

Each batch is one short transaction; a row is rewritten only if it still holds
the value read (compare and swap), so a row the gateway changed meanwhile is
left as the gateway wrote it and looked at again by the next pass. Passes
repeat until one finds nothing under an older key.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, func, select, tuple_, update
from sqlalchemy.orm import InstrumentedAttribute

from gateway.store import sealed
from gateway.store.models import LinkageState, OutboxRow, StoredMessage, SubjectPseudonym
from gateway.store.repository import Store


@dataclass(frozen=True)
class SealedColumn:
    """A column of sealed values, its table's key and each row's identity."""

    name: str
    column: InstrumentedAttribute[bytes]
    key: Sequence[InstrumentedAttribute[Any]]
    identity: Callable[[Any], str]


def _outbox_identity(row: Any) -> str:
    return sealed.outbox_row(row.sender, row.mid, row.destination, row.recipient)


SEALED: tuple[SealedColumn, ...] = (
    SealedColumn(
        "messages.payload",
        StoredMessage.payload,
        (StoredMessage.sender, StoredMessage.mid),
        lambda row: sealed.message_row(row.sender, row.mid),
    ),
    SealedColumn(
        "outbox.body",
        OutboxRow.body,
        (OutboxRow.id,),
        _outbox_identity,
    ),
    SealedColumn(
        "subject_pseudonyms.sealed_resident_id",
        SubjectPseudonym.sealed_resident_id,
        (SubjectPseudonym.recipient, SubjectPseudonym.pseudonym),
        lambda row: sealed.pseudonym_row(row.recipient, row.pseudonym),
    ),
    SealedColumn(
        "linkage_state.sealed_value",
        LinkageState.sealed_value,
        (LinkageState.linkage, LinkageState.key),
        lambda row: sealed.state_row(row.linkage, row.key),
    ),
)


def reseal(
    store: Store, *, batch: int = 500, on_batch: Callable[[str, int], None] = lambda *_: None
) -> int:
    """Re-seal every value not under the current data key; returns how many
    were rewritten. ``on_batch(column, rewritten)`` reports progress."""
    total = 0
    while True:
        rewritten = sum(_reseal_column(store, column, batch, on_batch) for column in SEALED)
        total += rewritten
        if rewritten == 0:
            return total


def stale_count(store: Store) -> int:
    """How many sealed values are not under the current data key (counted
    by the database from each value's key id, bytes 2–9)."""
    current = store.data_keys.current.encode()
    count = 0
    with store.transaction() as session:
        for column in SEALED:
            kid = func.substr(column.column, 2, 8)
            count += (
                session.scalar(select(func.count()).where(column.column != b"", kid != current))
                or 0
            )
    return count


def _reseal_column(
    store: Store, column: SealedColumn, batch: int, on_batch: Callable[[str, int], None]
) -> int:
    keys = store.data_keys
    model = column.column.class_
    table: Table = model.__table__
    needed = {c.key for c in table.primary_key.columns} | {"sender", "mid", "destination"}
    wanted = [c for c in table.columns if c.key in needed or c.key == "recipient"]
    key = tuple_(*column.key)
    after: tuple[Any, ...] | None = None
    rewritten = 0
    while True:
        with store.transaction() as session:
            query = select(*wanted, column.column).order_by(*column.key).limit(batch)
            if after is not None:
                query = query.where(key > tuple_(*after))
            rows = session.execute(query).all()
            if not rows:
                return rewritten
            current = keys.current
            done = 0
            for row in rows:
                old = row[-1]
                if not old or keys.key_of(old) == current:
                    continue
                identity = column.identity(row)
                fresh = keys.seal(keys.open(old, identity), identity)
                result = session.execute(
                    update(model)
                    .where(_same_row(column, row), column.column == old)
                    .values({column.column.key: fresh})
                )
                done += result.rowcount  # type: ignore[attr-defined]
            after = tuple(getattr(rows[-1], k.key) for k in column.key)
        rewritten += done
        on_batch(column.name, done)


def _same_row(column: SealedColumn, row: Any) -> ColumnElement[bool]:
    return and_(*(k == getattr(row, k.key) for k in column.key))
