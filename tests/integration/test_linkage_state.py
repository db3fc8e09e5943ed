"""A linkage's state as a sweep reads it, on SQLite and PostgreSQL: every key
under a prefix in key order, the writes of the batch and of the hook over the
stored values, read in chunks."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session

from gateway.domain.units import Units
from gateway.security.atrest import DataKeys
from gateway.store import db
from gateway.store.linkage_state import ITEMS_CHUNK, BatchState, StoredLinkageContext, flush
from gateway.store.sealed import INFO_KEY

NOW = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)


@pytest.fixture
def session(database_url: str) -> Iterator[Session]:
    engine = db.make_engine(database_url)
    db.upgrade(engine)
    with Session(engine, info={INFO_KEY: DataKeys.ephemeral()}) as session, session.begin():
        yield session
        session.rollback()
    engine.dispose()


def test_items_are_the_stored_state_under_the_batch_and_hook_writes_in_key_order(
    session: Session,
) -> None:
    stored = {f"person:{n:05d}": {"n": n} for n in range(ITEMS_CHUNK * 2 + 10)}
    flush(
        session,
        {
            **{("police", key): value for key, value in stored.items()},
            ("police", "finding:1"): {"other": "prefix"},
            ("procuratorate", "person:00001"): {"other": "linkage"},
        },
        NOW,
    )
    batch = BatchState()
    batch.staged.update(
        {("police", "person:00005"): {"n": "staged"}, ("police", "person:00005a"): {"new": 1}}
    )
    ctx = StoredLinkageContext(
        session, "police", subject_key=str, units=Units.default(), now=NOW, batch=batch
    )
    ctx.put("person:00005", {"n": "hook"})
    ctx.put("person:00007", {"n": "hook"})

    items = list(ctx.items("person:"))

    expected = {
        **stored,
        "person:00005": {"n": "hook"},
        "person:00005a": {"new": 1},
        "person:00007": {"n": "hook"},
    }
    assert items == sorted(expected.items())
