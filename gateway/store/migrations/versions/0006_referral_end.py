"""referral end

Revision ID: 0006_referral_end
Revises: 0004_encryption_at_rest
Create Date: 2026-12-01 06:20:00

A referral ends (``gateway.domain.referrals``): when it ended, and the last
service record of the partner naming the person (the idle rule counts from it).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0006_referral_end"
down_revision: str | Sequence[str] | None = "0004_encryption_at_rest"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("subject_pseudonyms") as table:
        table.add_column(sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True))
        table.add_column(sa.Column("last_service_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("subject_pseudonyms") as table:
        table.drop_column("last_service_at")
        table.drop_column("ended_at")
