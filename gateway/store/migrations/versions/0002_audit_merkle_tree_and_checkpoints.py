"""audit merkle tree and checkpoints

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 15:48:24.654086

Adds the stored Merkle subtrees of the audit log (``audit_nodes``), the head's
frontier and the signed checkpoints, and computes the subtrees and frontier of
entries that already exist (RFC 9162 hashing, written out here so the
migration does not change when the application code does).
"""

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 5000


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "audit_checkpoints",
        sa.Column("size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("root_hash", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("size"),
    )
    op.create_table(
        "audit_nodes",
        sa.Column("node", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("node"),
    )
    with op.batch_alter_table("audit_head", schema=None) as batch_op:
        batch_op.add_column(sa.Column("frontier", sa.LargeBinary(), nullable=True))
    _build_tree_of_existing_entries()
    with op.batch_alter_table("audit_head", schema=None) as batch_op:
        batch_op.alter_column("frontier", existing_type=sa.LargeBinary(), nullable=False)


def _build_tree_of_existing_entries() -> None:
    connection = op.get_bind()
    entries = sa.table("audit_entries", sa.column("idx"), sa.column("leaf_hash"))
    nodes = sa.table("audit_nodes", sa.column("node"), sa.column("hash"))
    head = sa.table("audit_head", sa.column("id"), sa.column("frontier"))
    frontier: list[bytes] = []
    size = 0
    while True:
        leaves = (
            connection.execute(
                sa.select(entries.c.leaf_hash)
                .where(entries.c.idx >= size)
                .order_by(entries.c.idx)
                .limit(_BATCH)
            )
            .scalars()
            .all()
        )
        pending: list[dict[str, object]] = []
        for leaf in leaves:
            node, level, n = leaf, 0, size
            while n & 1:
                node = hashlib.sha256(b"\x01" + frontier.pop() + node).digest()
                level, n = level + 1, n >> 1
                pending.append({"node": (level << 48) | (size >> level), "hash": node})
            frontier.append(node)
            size += 1
        if pending:
            connection.execute(nodes.insert(), pending)
        if len(leaves) < _BATCH:
            break
    connection.execute(head.update().where(head.c.id == 1).values(frontier=b"".join(frontier)))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("audit_head", schema=None) as batch_op:
        batch_op.drop_column("frontier")
    op.drop_table("audit_nodes")
    op.drop_table("audit_checkpoints")
