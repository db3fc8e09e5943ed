"""replica leases

Revision ID: 0005_replica_leases
Revises: 0006_referral_end
Create Date: 2026-12-01 06:00:00

Several gateway processes share one PostgreSQL database: ``leases`` holds who
runs each duty that must run once (relay, sweep, checkpoints) with a fencing
epoch, ``replicas`` the heartbeat of every process, and
``outbox.publish_attempts`` counts the relay rounds that read a row, so a row
published again after a crash goes out marked redelivered.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0005_replica_leases"
down_revision: str | Sequence[str] | None = "0006_referral_end"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "replicas",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("listen", sa.String(length=255), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("publish_attempts", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("publish_attempts")
    op.drop_table("replicas")
    op.drop_table("leases")
