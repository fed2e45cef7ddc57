"""A key's validity and its revocation bound to what this program accepted, not to time.

A revocation was a time compared with the time the signer wrote in its entry: an entry signed
with a revoked key but dated before the revocation was accepted. A key now carries its window in
the sequence numbers of the feed it signs (`valid_from_seq`, `valid_until_seq`) and its
revocation as the peer's accepted sequence number and checkpoint size when the operator revoked
it (`revoked_seq`, `revoked_size`); a key introduced by a rotation names the key that introduced
it (`introduced_by`) and, unless the peer's enrolment allows automatic rotation
(`peer.auto_rotate`), waits for the operator's confirmation (`awaiting_confirmation`). An
enrolled key no longer starts in 2000: `valid_from` is optional (a rotation's time, a further
restriction only).

Keys revoked before this revision are bound to what the hub had accepted of their peer when it
is applied (its cursor and checkpoint size): nothing accepted is lost, nothing newer is trusted.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 10:00:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SINCE_EVER = datetime(2000, 1, 1, tzinfo=UTC)  # the old default of `valid_from`


def upgrade() -> None:
    with op.batch_alter_table("peer") as batch_op:
        batch_op.add_column(
            sa.Column("auto_rotate", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table("peer_key") as batch_op:
        batch_op.alter_column("valid_from", existing_type=sa.DateTime(timezone=True), nullable=True)
        batch_op.add_column(sa.Column("valid_from_seq", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("valid_until_seq", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("revoked_seq", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("revoked_size", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("introduced_by", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column(
                "awaiting_confirmation", sa.Boolean(), server_default=sa.false(), nullable=False
            )
        )
    op.execute(
        sa.text(
            "UPDATE peer_key SET"
            " revoked_seq = COALESCE((SELECT s.cursor FROM peer_sync s"
            " WHERE s.peer_id = peer_key.peer_id), 0),"
            " revoked_size = COALESCE((SELECT s.checkpoint_size FROM peer_sync s"
            " WHERE s.peer_id = peer_key.peer_id), 0)"
            " WHERE revoked_at IS NOT NULL"
        )
    )


def downgrade() -> None:
    peer_key = sa.table("peer_key", sa.column("valid_from", sa.DateTime(timezone=True)))
    op.execute(
        peer_key.update().where(peer_key.c.valid_from.is_(None)).values(valid_from=SINCE_EVER)
    )
    with op.batch_alter_table("peer_key") as batch_op:
        batch_op.drop_column("awaiting_confirmation")
        batch_op.drop_column("introduced_by")
        batch_op.drop_column("revoked_size")
        batch_op.drop_column("revoked_seq")
        batch_op.drop_column("valid_until_seq")
        batch_op.drop_column("valid_from_seq")
        batch_op.alter_column(
            "valid_from", existing_type=sa.DateTime(timezone=True), nullable=False
        )
    with op.batch_alter_table("peer") as batch_op:
        batch_op.drop_column("auto_rotate")
