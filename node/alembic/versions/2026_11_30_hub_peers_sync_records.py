"""The hub: enrolled peers and their keys, sync state and Merkle leaves, accepted records, refusals.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 12:53:45.189451
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "federated_record",
        sa.Column("record_id", sa.String(length=80), nullable=False),
        sa.Column("origin", sa.String(length=2), nullable=False),
        sa.Column("record_type", sa.String(length=20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("withdrawn", sa.Boolean(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=True),
        sa.Column("body_hash", sa.String(length=64), nullable=False),
        sa.Column("envelope", sa.Text(), nullable=False),
        sa.Column("origin_seq", sa.BigInteger(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("record_id", name=op.f("pk_federated_record")),
    )
    with op.batch_alter_table("federated_record", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_federated_record_origin"), ["origin"], unique=False)

    op.create_table(
        "peer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("origin", sa.String(length=2), nullable=False),
        sa.Column("base_url", sa.String(length=300), nullable=False),
        sa.Column("enrolled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_peer")),
        sa.UniqueConstraint("origin", name=op.f("uq_peer_origin")),
    )
    op.create_table(
        "peer_key",
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("peer_id", sa.Integer(), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["peer_id"], ["peer.id"], name=op.f("fk_peer_key_peer_id_peer"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_peer_key")),
    )
    with op.batch_alter_table("peer_key", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_peer_key_peer_id"), ["peer_id"], unique=False)

    op.create_table(
        "peer_leaf",
        sa.Column("peer_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("leaf", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["peer_id"], ["peer.id"], name=op.f("fk_peer_leaf_peer_id_peer"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("peer_id", "seq", name=op.f("pk_peer_leaf")),
    )
    op.create_table(
        "peer_sync",
        sa.Column("peer_id", sa.Integer(), nullable=False),
        sa.Column("cursor", sa.BigInteger(), nullable=False),
        sa.Column("checkpoint_size", sa.BigInteger(), nullable=False),
        sa.Column("checkpoint_root", sa.String(length=64), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("running_since", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["peer_id"], ["peer.id"], name=op.f("fk_peer_sync_peer_id_peer"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("peer_id", name=op.f("pk_peer_sync")),
    )
    op.create_table(
        "sync_refusal",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("peer_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=True),
        sa.Column("record_id", sa.String(length=80), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["peer_id"], ["peer.id"], name=op.f("fk_sync_refusal_peer_id_peer"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_refusal")),
    )
    with op.batch_alter_table("sync_refusal", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sync_refusal_peer_id"), ["peer_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sync_refusal", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sync_refusal_peer_id"))

    op.drop_table("sync_refusal")
    op.drop_table("peer_sync")
    op.drop_table("peer_leaf")
    with op.batch_alter_table("peer_key", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_peer_key_peer_id"))

    op.drop_table("peer_key")
    op.drop_table("peer")
    with op.batch_alter_table("federated_record", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_federated_record_origin"))

    op.drop_table("federated_record")
