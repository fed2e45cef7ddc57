"""How fresh a peer's signed checkpoint is: the signing time of the last checkpoint accepted
(`checkpoint_time`, never later than the hub's clock when it was accepted), and whether the peer
is stale (`stale_since`, `stale_reason`): its checkpoint is older than the last accepted one or
older than the configured freshness. A peer that answers with an old but validly signed
checkpoint no longer looks in sync while it is frozen.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 10:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("peer_sync") as batch_op:
        batch_op.add_column(sa.Column("checkpoint_time", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("stale_since", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("stale_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("peer_sync") as batch_op:
        batch_op.drop_column("stale_reason")
        batch_op.drop_column("stale_since")
        batch_op.drop_column("checkpoint_time")
