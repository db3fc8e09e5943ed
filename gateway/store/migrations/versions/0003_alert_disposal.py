"""alert disposal: the lifecycle of alerts and verification campaigns

Revision ID: 0003_alert_disposal
Revises: 0005_replica_leases
Create Date: 2026-12-01 06:10:00

Adds ``alert_cases`` (each alert's disposal: state, deadlines, first
verification and disposal, escalations) and ``campaigns`` (verification
requests: people asked and answered, hits). Alerts raised before this
migration have no case: dispositions of them are refused as unknown.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003_alert_disposal"
down_revision: str | Sequence[str] | None = "0005_replica_leases"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _moment(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "alert_cases",
        sa.Column("alert_id", sa.String(64), nullable=False),
        sa.Column("mid", sa.String(64), nullable=False),
        sa.Column("alert_type", sa.Integer(), nullable=False),
        sa.Column("severity", sa.Integer(), nullable=False),
        sa.Column("unit_code", sa.String(16), nullable=False),
        sa.Column("subject_key", sa.String(64), nullable=False),
        _moment("raised_at", nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        _moment("verify_due"),
        _moment("dispose_due"),
        _moment("verified_at"),
        _moment("disposed_at"),
        sa.Column("disposed_in_time", sa.Boolean(), nullable=True),
        _moment("closed_at"),
        _moment("last_step_at"),
        sa.Column("last_mid", sa.String(64), nullable=False),
        sa.Column("officer", sa.String(200), nullable=False),
        sa.Column("method", sa.Integer(), nullable=False),
        sa.Column("finding", sa.Integer(), nullable=False),
        sa.Column("action", sa.Integer(), nullable=False),
        sa.Column("reopened", sa.Integer(), nullable=False),
        sa.Column("escalated_verify", sa.Boolean(), nullable=False),
        sa.Column("escalated_dispose", sa.Boolean(), nullable=False),
        sa.Column("expected_change", sa.Integer(), nullable=False),
        _moment("expected_by"),
        sa.Column("expected_done", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("alert_id"),
    )
    op.create_index("ix_alert_cases_unit_state", "alert_cases", ["unit_code", "state"])
    op.create_index("ix_alert_cases_subject", "alert_cases", ["subject_key"])
    op.create_index("ix_alert_cases_raised_at", "alert_cases", ["raised_at"])
    op.create_table(
        "campaigns",
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("mid", sa.String(64), nullable=False),
        sa.Column("unit_code", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        _moment("requested_at", nullable=False),
        _moment("deadline"),
        sa.Column("asked", sa.JSON(), nullable=False),
        sa.Column("answered", sa.JSON(), nullable=False),
        sa.Column("results", sa.Integer(), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.Column("unanswered_alerted", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("request_id"),
    )
    op.create_index("ix_campaigns_unit_code", "campaigns", ["unit_code"])
    op.create_index("ix_campaigns_requested_at", "campaigns", ["requested_at"])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("campaigns")
    op.drop_table("alert_cases")
