"""encryption at rest

Revision ID: 0004_encryption_at_rest
Revises: 0002
Create Date: 2026-12-01 06:00:00

Personal data is sealed with the data key (AES-256-GCM, the row's identity as
associated data): message payloads, outbox bodies, the resident ID behind each
pseudonym (the clear ``resident_id`` column and its index go) and linkage
state (``value`` JSON becomes ``sealed_value``). Rows that exist are sealed
here with the data keys the gateway passes in (``config.attributes``); the
row identities are written out so this migration does not change when the
application code does.
"""

import json
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0004_encryption_at_rest"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 1000

_messages = sa.table(
    "messages", sa.column("sender"), sa.column("mid"), sa.column("payload", sa.LargeBinary)
)
_outbox = sa.table(
    "outbox",
    sa.column("id"),
    sa.column("sender"),
    sa.column("mid"),
    sa.column("destination"),
    sa.column("recipient"),
    sa.column("body", sa.LargeBinary),
)


def _keys() -> Any:
    keys = op.get_context().config.attributes.get("data_keys")  # type: ignore[union-attr]
    if keys is None:
        raise RuntimeError(
            "this database holds personal data to encrypt: upgrade it through the gateway "
            "(silian serve, or any silian command that opens the database), which passes "
            "the data key"
        )
    return keys


def _has_rows(table: str) -> bool:
    return op.get_bind().execute(sa.text(f"SELECT 1 FROM {table} LIMIT 1")).first() is not None


def _rewrite_messages(change: Callable[[Any, bytes, str], bytes]) -> None:
    bind = op.get_bind()
    if not _has_rows("messages"):
        return
    keys = _keys()
    rows = bind.execute(sa.select(_messages.c.sender, _messages.c.mid, _messages.c.payload))
    for sender, mid, payload in rows.fetchall():
        bind.execute(
            _messages.update()
            .where(_messages.c.sender == sender, _messages.c.mid == mid)
            .values(payload=change(keys, payload, f"messages/{sender}/{mid}"))
        )


def _rewrite_outbox(change: Callable[[Any, bytes, str], bytes]) -> None:
    bind = op.get_bind()
    if not _has_rows("outbox"):
        return
    keys = _keys()
    last = 0
    while True:
        rows = bind.execute(
            sa.select(_outbox).where(_outbox.c.id > last).order_by(_outbox.c.id).limit(_BATCH)
        ).fetchall()
        if not rows:
            return
        for row in rows:
            identity = f"outbox/{row.sender}/{row.mid}/{row.destination}/{row.recipient}"
            bind.execute(
                _outbox.update()
                .where(_outbox.c.id == row.id)
                .values(body=change(keys, row.body, identity))
            )
        last = rows[-1].id


def _seal(keys: Any, data: bytes, identity: str) -> bytes:
    return bytes(keys.seal(bytes(data), identity))


def _open(keys: Any, data: bytes, identity: str) -> bytes:
    return bytes(keys.open(bytes(data), identity))


def upgrade() -> None:
    """Upgrade schema."""
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        # Overwrite the clear values replaced below instead of leaving them in free pages.
        bind.exec_driver_sql("PRAGMA secure_delete = ON")
    _rewrite_messages(_seal)
    _rewrite_outbox(_seal)

    with op.batch_alter_table("subject_pseudonyms", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sealed_resident_id", sa.LargeBinary(), nullable=True))
    if _has_rows("subject_pseudonyms"):
        keys = _keys()
        rows = bind.execute(
            sa.text("SELECT recipient, pseudonym, resident_id FROM subject_pseudonyms")
        ).fetchall()
        for recipient, pseudonym, resident_id in rows:
            bind.execute(
                sa.text(
                    "UPDATE subject_pseudonyms SET sealed_resident_id = :sealed "
                    "WHERE recipient = :recipient AND pseudonym = :pseudonym"
                ),
                {
                    "sealed": keys.seal_text(
                        resident_id, f"subject_pseudonyms/{recipient}/{pseudonym}"
                    ),
                    "recipient": recipient,
                    "pseudonym": pseudonym,
                },
            )
    with op.batch_alter_table("subject_pseudonyms", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subject_pseudonyms_resident_id"))
        batch_op.drop_column("resident_id")
        batch_op.alter_column("sealed_resident_id", nullable=False)

    with op.batch_alter_table("linkage_state", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sealed_value", sa.LargeBinary(), nullable=True))
    if _has_rows("linkage_state"):
        keys = _keys()
        rows = bind.execute(sa.text("SELECT linkage, key, value FROM linkage_state")).fetchall()
        for linkage, key, value in rows:
            document = json.loads(value) if isinstance(value, str) else value
            text = json.dumps(document, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
            bind.execute(
                sa.text(
                    "UPDATE linkage_state SET sealed_value = :sealed "
                    "WHERE linkage = :linkage AND key = :key"
                ),
                {
                    "sealed": keys.seal_text(text, f"linkage_state/{linkage}/{key}"),
                    "linkage": linkage,
                    "key": key,
                },
            )
    with op.batch_alter_table("linkage_state", schema=None) as batch_op:
        batch_op.drop_column("value")
        batch_op.alter_column("sealed_value", nullable=False)


def downgrade() -> None:
    """Downgrade schema: personal data back in clear (needs the data key)."""
    bind = op.get_bind()
    with op.batch_alter_table("linkage_state", schema=None) as batch_op:
        batch_op.add_column(sa.Column("value", sa.JSON(), nullable=True))
    if _has_rows("linkage_state"):
        keys = _keys()
        rows = bind.execute(
            sa.text("SELECT linkage, key, sealed_value FROM linkage_state")
        ).fetchall()
        for linkage, key, sealed in rows:
            text = keys.open_text(bytes(sealed), f"linkage_state/{linkage}/{key}")
            bind.execute(
                sa.text(
                    "UPDATE linkage_state SET value = :value "
                    "WHERE linkage = :linkage AND key = :key"
                ),
                {"value": text, "linkage": linkage, "key": key},
            )
    with op.batch_alter_table("linkage_state", schema=None) as batch_op:
        batch_op.drop_column("sealed_value")
        batch_op.alter_column("value", nullable=False)

    with op.batch_alter_table("subject_pseudonyms", schema=None) as batch_op:
        batch_op.add_column(sa.Column("resident_id", sa.String(length=18), nullable=True))
    if _has_rows("subject_pseudonyms"):
        keys = _keys()
        rows = bind.execute(
            sa.text("SELECT recipient, pseudonym, sealed_resident_id FROM subject_pseudonyms")
        ).fetchall()
        for recipient, pseudonym, sealed in rows:
            bind.execute(
                sa.text(
                    "UPDATE subject_pseudonyms SET resident_id = :resident_id "
                    "WHERE recipient = :recipient AND pseudonym = :pseudonym"
                ),
                {
                    "resident_id": keys.open_text(
                        bytes(sealed), f"subject_pseudonyms/{recipient}/{pseudonym}"
                    ),
                    "recipient": recipient,
                    "pseudonym": pseudonym,
                },
            )
    with op.batch_alter_table("subject_pseudonyms", schema=None) as batch_op:
        batch_op.drop_column("sealed_resident_id")
        batch_op.alter_column("resident_id", nullable=False)
        batch_op.create_index(
            batch_op.f("ix_subject_pseudonyms_resident_id"), ["resident_id"], unique=False
        )

    _rewrite_outbox(_open)
    _rewrite_messages(_open)
