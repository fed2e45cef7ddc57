"""Heartbeats: each running server and Celery worker says every few seconds that it is alive and
with which settings, so that readiness can tell whether a worker is there and a CLI command can
tell that the node serving its database runs with other federation settings.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 11:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "heartbeat",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("beat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_heartbeat")),
    )
    with op.batch_alter_table("heartbeat") as batch_op:
        batch_op.create_index(batch_op.f("ix_heartbeat_kind"), ["kind"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("heartbeat") as batch_op:
        batch_op.drop_index(batch_op.f("ix_heartbeat_kind"))
    op.drop_table("heartbeat")
