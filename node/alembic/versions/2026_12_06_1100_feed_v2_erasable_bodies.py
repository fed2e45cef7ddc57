"""Feed v2: a body is stored beside its signed entry, so a signed redaction can purge it.

A v2 entry's signed payload carries the body's hash, not the body; the body is kept in its own
column (`feed_entry.body`, `federated_record.stored_body`) and purged there. A purged entry
keeps its Merkle leaf (`leaf`, the hex of its RFC 6962 leaf hash), so a v1 entry whose signed
text is replaced by the redaction marker still counts in the tree and old checkpoints stay
checkable.
`redacted`: the marker (the redaction's seq and reason) of a purged entry or record.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("feed_entry", schema=None) as batch_op:
        batch_op.add_column(sa.Column("body", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("leaf", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("redacted", sa.Text(), nullable=True))
    with op.batch_alter_table("federated_record", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stored_body", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("redacted", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("federated_record", schema=None) as batch_op:
        batch_op.drop_column("redacted")
        batch_op.drop_column("stored_body")
    with op.batch_alter_table("feed_entry", schema=None) as batch_op:
        batch_op.drop_column("redacted")
        batch_op.drop_column("leaf")
        batch_op.drop_column("body")
