"""Merkle frontiers instead of every leaf (feed and subscriptions); peers of several kinds.

The feed keeps its size and frontier with each append, so a checkpoint no longer reads the whole
log; a subscription keeps the frontier of what it received instead of one row per entry. A peer
is a node the hub pulls, a hub this node mirrors, or a node listed in that hub's directory.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 14:20:00
"""

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNREADABLE = "00" * 32


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _extend(frontier: list[tuple[int, bytes]], leaf: bytes) -> None:
    # Written out here rather than imported: a migration must not change when the code does.
    frontier.append((1, leaf))
    while len(frontier) > 1 and frontier[-1][0] == frontier[-2][0]:
        (size, left), (_, right) = frontier[-2], frontier[-1]
        frontier[-2:] = [(size * 2, _node(left, right))]


def upgrade() -> None:
    feed_state = op.create_table(
        "feed_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("frontier", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feed_state")),
    )
    with op.batch_alter_table("peer", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=10), server_default="node", nullable=False)
        )
    with op.batch_alter_table("peer_sync", schema=None) as batch_op:
        batch_op.add_column(sa.Column("frontier", sa.JSON(), nullable=True))

    bind = op.get_bind()
    frontier: list[tuple[int, bytes]] = []
    size = 0
    for (payload,) in bind.execute(sa.text("SELECT payload FROM feed_entry ORDER BY seq")):
        _extend(frontier, hashlib.sha256(b"\x00" + payload.encode("utf-8")).digest())
        size += 1
    op.bulk_insert(
        feed_state, [{"id": 1, "size": size, "frontier": [[n, h.hex()] for n, h in frontier]}]
    )

    peer_sync = sa.table("peer_sync", sa.column("peer_id"), sa.column("frontier", sa.JSON()))
    peers = [row[0] for row in bind.execute(sa.text("SELECT peer_id FROM peer_sync"))]
    for peer_id in peers:
        leaves = bind.execute(
            sa.text("SELECT leaf FROM peer_leaf WHERE peer_id = :p ORDER BY seq"), {"p": peer_id}
        ).scalars()
        peer_frontier: list[tuple[int, bytes]] | None = []
        for leaf in leaves:
            if leaf == UNREADABLE:
                peer_frontier = None
                break
            assert peer_frontier is not None
            _extend(peer_frontier, bytes.fromhex(leaf))
        value = None if peer_frontier is None else [[n, h.hex()] for n, h in peer_frontier]
        bind.execute(
            peer_sync.update().where(peer_sync.c.peer_id == peer_id).values(frontier=value)
        )
    op.drop_table("peer_leaf")


def downgrade() -> None:
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
    # The leaves themselves are gone: subscriptions start over from the beginning.
    op.execute(
        sa.text("UPDATE peer_sync SET cursor = 0, checkpoint_size = 0, checkpoint_root = NULL")
    )
    with op.batch_alter_table("peer_sync", schema=None) as batch_op:
        batch_op.drop_column("frontier")
    with op.batch_alter_table("peer", schema=None) as batch_op:
        batch_op.drop_column("kind")
    op.drop_table("feed_state")
