"""A sharing scope on every practice and study-visit report (public, network, national), the
scope each feed entry and each record of the EU pool signs, and the nonces of the signed
requests peers read `network` entries with.

Existing practices are `public`, existing study-visit reports `network` (the reconciliation at
start re-appends them with that scope); existing feed entries and pool records were all signed
`public`. Every pool record is marked for the search index's catch-up, which files it under the
scope it now has.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEFAULTS = {
    "practice": "public",
    "study_visit": "network",
    "feed_entry": "public",
    "federated_record": "public",
}


def upgrade() -> None:
    for table, default in DEFAULTS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("scope", sa.String(length=10), server_default=default, nullable=False)
            )
    op.create_table(
        "peer_nonce",
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key_id", "nonce", name=op.f("pk_peer_nonce")),
    )
    with op.batch_alter_table("peer_nonce", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_peer_nonce_created_at"), ["created_at"], unique=False)
    pool = sa.table("federated_record", sa.column("indexed", sa.Boolean()))
    op.execute(pool.update().values(indexed=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("peer_nonce", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_peer_nonce_created_at"))
    op.drop_table("peer_nonce")
    for table in reversed(DEFAULTS):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("scope")
