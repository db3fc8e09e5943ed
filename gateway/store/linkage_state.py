"""Linkage state in the database: what linkages keep between messages
(``linkage_state``, JSON documents namespaced by linkage), read ahead per
commit batch and written in one upsert."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from gateway.domain.calendar import BUREAU_TIME, local_date
from gateway.domain.units import Units
from gateway.store import sealed
from gateway.store.models import LinkageState
from gateway.store.repository import Store

#: Rows a sweep reads from the database at a time (StoredLinkageContext.items).
ITEMS_CHUNK = 1000


#: Linkage state written but not yet flushed: (linkage, key) -> value.
Staged = dict[tuple[str, str], dict[str, Any]]


@dataclass
class BatchState:
    """Linkage state of one commit batch: what its hooks staged, and what was
    read ahead for them in one query (None: known to be absent)."""

    staged: Staged = field(default_factory=dict)
    fetched: dict[tuple[str, str], dict[str, Any] | None] = field(default_factory=dict)

    def prefetch(self, session: Session, names: Sequence[tuple[str, str]]) -> None:
        """Read these (linkage, key) in one query, so hooks' ``get`` costs no round trip."""
        wanted = sorted(set(names) - set(self.fetched))
        if not wanted:
            return
        self.fetched.update(dict.fromkeys(wanted))
        rows = session.execute(
            select(LinkageState.linkage, LinkageState.key, LinkageState.sealed_value).where(
                LinkageState.linkage.in_({linkage for linkage, _ in wanted}),
                LinkageState.key.in_({key for _, key in wanted}),
            )
        )
        keys = sealed.keys_of(session)
        self.fetched.update(
            {
                (linkage, key): sealed.open_state(keys, linkage, key, value)
                for linkage, key, value in rows
                if (linkage, key) in self.fetched
            }
        )


class StoredLinkageContext:
    """The ``LinkageContext`` of one linkage in one transaction: its own namespaced state, the
    subject key of a resident ID, the units and the current time.

    Writes are kept in ``overlay`` until the hook returns; the caller then
    merges them into the batch's ``staged`` writes (or drops them when the
    hook refused the message), and ``flush`` stores them all at once. Reads
    see this hook's writes, then the batch's, then the database.
    """

    def __init__(
        self,
        session: Session,
        linkage: str,
        *,
        subject_key: Callable[[str], str],
        units: Units,
        now: datetime,
        batch: BatchState | None = None,
        overlay: Staged | None = None,
        zone: tzinfo = BUREAU_TIME,
    ) -> None:
        self._session = session
        #: The bureau's calendar: ``today`` is its date of ``now``.
        self.zone = zone
        self.linkage = linkage
        self.subject_key = subject_key
        self.units = units
        self.now = now
        self._batch = batch or BatchState()
        self._staged = self._batch.staged
        self.overlay = {} if overlay is None else overlay

    @property
    def today(self) -> date:
        return local_date(self.now, self.zone)

    def get(self, key: str) -> dict[str, Any] | None:
        name = (self.linkage, key)
        for layer in (self.overlay, self._staged):
            if name in layer:
                return dict(layer[name])
        if name in self._batch.fetched:
            known = self._batch.fetched[name]
            return dict(known) if known is not None else None
        value = self._session.execute(
            select(LinkageState.sealed_value).where(
                LinkageState.linkage == self.linkage, LinkageState.key == key
            )
        ).scalar_one_or_none()
        if value is None:
            return None
        return sealed.open_state(sealed.keys_of(self._session), self.linkage, key, value)

    def put(self, key: str, value: dict[str, Any]) -> None:
        self.overlay[(self.linkage, key)] = dict(value)

    def resident_id_of(self, pseudonym: str) -> str | None:
        """The resident ID behind a pseudonym the gateway issued to a partner."""
        return Store.resident_id_of_pseudonym_in(self._session, pseudonym)

    def referred_among(self, recipient: str, pseudonyms: Sequence[str]) -> set[str]:
        """Those of ``pseudonyms`` whose subject was referred to ``recipient`` (one query)."""
        return Store.referred_among_in(self._session, recipient, pseudonyms)

    def items(self, prefix: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every (key, value) of this linkage whose key starts with ``prefix``,
        in key order, read from the database in chunks: a sweep over a large
        roster must not hold all of it in memory at once."""
        layered: dict[str, dict[str, Any]] = {}
        for layer in (self._staged, self.overlay):  # the overlay wins
            layered.update(
                {k: v for (n, k), v in layer.items() if n == self.linkage and k.startswith(prefix)}
            )
        rows = self._session.execute(
            select(LinkageState.key, LinkageState.sealed_value)
            .where(LinkageState.linkage == self.linkage, LinkageState.key.startswith(prefix))
            .order_by(LinkageState.key)
            .execution_options(yield_per=ITEMS_CHUNK)
        )
        keys = sealed.keys_of(self._session)
        stored = (
            (key, sealed.open_state(keys, self.linkage, key, value))
            for key, value in rows
            if key not in layered
        )
        pending = sorted((key, dict(value)) for key, value in layered.items())
        yield from heapq.merge(stored, pending, key=lambda item: item[0])


def flush(session: Session, staged: Staged, now: datetime) -> None:
    """Store staged linkage state in one multi-row upsert."""
    if not staged:
        return
    keys = sealed.keys_of(session)
    rows = [
        {
            "linkage": linkage,
            "key": key,
            "sealed_value": sealed.seal_state(keys, linkage, key, value),
            "updated_at": now,
        }
        for (linkage, key), value in staged.items()
    ]
    dialect = session.get_bind().dialect.name
    statement = (postgresql_insert if dialect == "postgresql" else sqlite_insert)(LinkageState)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["linkage", "key"],
            set_={
                "sealed_value": statement.excluded.sealed_value,
                "updated_at": statement.excluded.updated_at,
            },
        ),
        rows,
    )
