"""A practice knows when the personal-data gate holds it: only signed-in users see it then.

The flag is set from the review queue: a practice with a hold still open (status `held`) is
held from the start.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 10:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("practice", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("held", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.create_index(batch_op.f("ix_practice_held"), ["held"], unique=False)
    practice = sa.table("practice", sa.column("id", sa.Uuid()), sa.column("held", sa.Boolean()))
    hold = sa.table(
        "gate_hold",
        sa.column("record_type", sa.String()),
        sa.column("record_id", sa.Uuid()),
        sa.column("status", sa.String()),
    )
    open_holds = sa.select(hold.c.record_id).where(
        hold.c.record_type == "practice", hold.c.status == "held"
    )
    op.execute(practice.update().where(practice.c.id.in_(open_holds)).values(held=sa.true()))


def downgrade() -> None:
    with op.batch_alter_table("practice", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_practice_held"))
        batch_op.drop_column("held")
