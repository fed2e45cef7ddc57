"""Sign-in hardening and traceable jobs: every sign-in attempt kept for the window the rate
limits count in (per account and per source address, shared by every server process), and the
id of the request that queued each outbox job, carried into the job's log events.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 12:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sign_in_attempt",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("account", sa.String(length=320), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("succeeded", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_attempt")),
    )
    with op.batch_alter_table("sign_in_attempt") as batch_op:
        for column in ("at", "account", "address"):
            batch_op.create_index(batch_op.f(f"ix_sign_in_attempt_{column}"), [column])
    with op.batch_alter_table("outbox_message") as batch_op:
        batch_op.add_column(sa.Column("request_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox_message") as batch_op:
        batch_op.drop_column("request_id")
    with op.batch_alter_table("sign_in_attempt") as batch_op:
        for column in ("at", "account", "address"):
            batch_op.drop_index(batch_op.f(f"ix_sign_in_attempt_{column}"))
    op.drop_table("sign_in_attempt")
