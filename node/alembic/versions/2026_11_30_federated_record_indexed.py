"""The hub's search index follows its import: each held record says whether it is indexed.

The import writes records and marks them pending in its own transactions; the index catches up
right after each round (and after a crash, in the next one). Records held before this revision
are indexed already.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 17:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("federated_record", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("indexed", sa.Boolean(), nullable=False, server_default=sa.true())
        )
    op.create_index(
        "ix_federated_record_pending",
        "federated_record",
        ["record_id"],
        unique=False,
        sqlite_where=sa.text("NOT indexed"),
        postgresql_where=sa.text("NOT indexed"),
    )


def downgrade() -> None:
    op.drop_index("ix_federated_record_pending", table_name="federated_record")
    with op.batch_alter_table("federated_record", schema=None) as batch_op:
        batch_op.drop_column("indexed")
