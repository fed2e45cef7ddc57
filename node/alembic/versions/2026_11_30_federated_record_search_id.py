"""The hub indexes the records it holds: their id in the search index.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 13:14:38.929980
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("federated_record", schema=None) as batch_op:
        batch_op.add_column(sa.Column("search_id", sa.Uuid(), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f("uq_federated_record_search_id"), ["search_id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("federated_record", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_federated_record_search_id"), type_="unique")
        batch_op.drop_column("search_id")
