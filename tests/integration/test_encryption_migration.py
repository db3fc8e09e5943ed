"""Migration 0004 encrypts the personal data a database from before it holds:
afterwards no row names the person in clear, and the gateway reads it all back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import Engine, text

from gateway.domain.units import Units
from gateway.security.atrest import DataKeys
from gateway.store import db
from gateway.store.linkage_state import StoredLinkageContext
from gateway.store.models import StoredMessage
from gateway.store.repository import Store
from gateway.testing import resident_id
from tests.integration.audit_fixtures import fresh_database_url  # noqa: F401  (a fixture)

NOW = datetime(2026, 11, 30, tzinfo=UTC)
PERSON = resident_id()
PAYLOAD = f"roster change of {PERSON} 张三".encode()
BODY = f"police view of {PERSON}".encode()


def _clear_rows(engine: Engine) -> None:
    """What a 0002 database holds after one message: all of it in clear."""
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO messages (sender, mid, kind, payload, payload_sha256, signature, "
                "unit_code, accepted_at, audit_index, receipt) VALUES ('judicial', 'm-1', "
                "'roster.change', :payload, 'd', 's', '610302', :now, 0, :receipt)"
            ),
            {"payload": PAYLOAD, "now": NOW, "receipt": b"r"},
        )
        connection.execute(
            text(
                "INSERT INTO outbox (sender, mid, kind, destination, recipient, routing_key, "
                "policy_id, view_sha256, body, headers, created_at) VALUES ('judicial', 'm-1', "
                "'roster.change', 'inbox', 'police', 'police', 'r1', 'v', :body, '{}', :now)"
            ),
            {"body": BODY, "now": NOW},
        )
        connection.execute(
            text(
                "INSERT INTO subject_pseudonyms (recipient, pseudonym, resident_id) "
                "VALUES ('ngo', 'P-1', :person)"
            ),
            {"person": PERSON},
        )
        connection.execute(
            text(
                "INSERT INTO linkage_state (linkage, key, value, updated_at) "
                "VALUES ('police', 'person:h', :value, :now)"
            ),
            {"value": f'{{"name": "张三", "id": "{PERSON}"}}', "now": NOW},
        )


def _every_row(engine: Engine) -> str:
    parts: list[str] = []
    with engine.connect() as connection:
        for table in ("messages", "outbox", "subject_pseudonyms", "linkage_state"):
            for row in connection.execute(text(f"SELECT * FROM {table}")):
                parts.extend(
                    bytes(v).decode("utf-8", "replace")
                    if isinstance(v, bytes | memoryview)
                    else str(v)
                    for v in row
                )
    return "\n".join(parts)


def test_upgrading_seals_what_was_in_clear_and_the_gateway_reads_it(
    fresh_database_url: str,  # noqa: F811
) -> None:
    engine = db.make_engine(fresh_database_url)
    db.upgrade(engine, "0002")
    _clear_rows(engine)
    assert PERSON in _every_row(engine)
    keys = DataKeys.ephemeral()

    db.upgrade(engine, data_keys=keys)

    everything = _every_row(engine)
    assert PERSON not in everything and "张三" not in everything
    sqlite_file = db.sqlite_path(fresh_database_url)
    if sqlite_file is not None:  # not even in free pages or the journal
        raw = b"".join(f.read_bytes() for f in sqlite_file.parent.glob(sqlite_file.name + "*"))
        assert PERSON.encode() not in raw
    store = Store(engine, keys)
    with store.transaction() as session:
        message = session.get(StoredMessage, ("judicial", "m-1"))
        assert message is not None
        context = StoredLinkageContext(
            session, "police", subject_key=str, units=Units.default(), now=NOW
        )
        assert context.get("person:h") == {"name": "张三", "id": PERSON}
        assert context.resident_id_of("P-1") == PERSON
    assert store.payload_of(message) == PAYLOAD
    assert [item.body for item in store.pending(10)] == [BODY]
    assert store.resolve_pseudonym("ngo", "P-1") == PERSON

    command.downgrade(db.alembic_config(engine, keys), "0002")
    assert PERSON in _every_row(engine)
    engine.dispose()


def test_upgrading_personal_data_without_the_data_key_is_refused(
    fresh_database_url: str,  # noqa: F811
) -> None:
    engine = db.make_engine(fresh_database_url)
    db.upgrade(engine, "0002")
    _clear_rows(engine)
    with pytest.raises(RuntimeError, match="data key"):
        db.upgrade(engine)
    engine.dispose()
