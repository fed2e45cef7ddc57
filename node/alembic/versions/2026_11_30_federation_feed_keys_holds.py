"""Federation: the node's signing keys, its signed feed, and the records the gate holds.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 12:36:28.690110
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "feed_entry",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("record_type", sa.String(length=20), nullable=False),
        sa.Column("record_id", sa.String(length=80), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("op", sa.String(length=10), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("body_hash", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_feed_entry")),
    )
    with op.batch_alter_table("feed_entry", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_feed_entry_record_id"), ["record_id"], unique=False)

    op.create_table(
        "gate_hold",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("record_type", sa.String(length=20), nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("hits", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.String(length=320), nullable=True),
        sa.Column("justification", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gate_hold")),
        sa.UniqueConstraint(
            "record_type",
            "record_id",
            "version",
            name=op.f("uq_gate_hold_record_type_record_id_version"),
        ),
    )
    with op.batch_alter_table("gate_hold", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_gate_hold_record_id"), ["record_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_gate_hold_status"), ["status"], unique=False)

    op.create_table(
        "node_key",
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("announcement", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_node_key")),
    )


def downgrade() -> None:
    op.drop_table("node_key")
    with op.batch_alter_table("gate_hold", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_gate_hold_status"))
        batch_op.drop_index(batch_op.f("ix_gate_hold_record_id"))

    op.drop_table("gate_hold")
    with op.batch_alter_table("feed_entry", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feed_entry_record_id"))

    op.drop_table("feed_entry")
