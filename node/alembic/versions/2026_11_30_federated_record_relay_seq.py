"""A hub keeps each relayed record's envelope once: in the entry of its feed that relays it.

The origin's signed envelope was stored twice on a hub: in the record, and byte for byte inside
the entry the hub relays it with; half of what an import wrote. A record the hub relays now
points at that entry (`relay_seq`) and keeps no envelope of its own (NULL). A mirror, which
relays nothing, still keeps it in the record; so do records stored before this revision.
SQLite cannot drop a NOT NULL in place: the table is copied (with its indexes).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 23:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RELAY_HEAD = '{"envelope":'
RELAY_REST = ',"id":'
CHUNK = 1000


def upgrade() -> None:
    with op.batch_alter_table("federated_record") as batch_op:
        batch_op.add_column(sa.Column("relay_seq", sa.BigInteger(), nullable=True))
        batch_op.alter_column("envelope", existing_type=sa.Text(), nullable=True)


def downgrade() -> None:
    """Each envelope back in its record, cut out of the relay entry it was kept in: a thousand
    records at a time (a hub holds hundreds of thousands)."""
    records = sa.table(
        "federated_record",
        sa.column("record_id", sa.String),
        sa.column("envelope", sa.Text),
        sa.column("relay_seq", sa.BigInteger),
    )
    feed = sa.table("feed_entry", sa.column("seq", sa.BigInteger), sa.column("payload", sa.Text))
    conn = op.get_bind()
    relayed = conn.execute(
        sa.select(records.c.record_id, records.c.relay_seq).where(records.c.envelope.is_(None))
    ).all()
    fill = (
        records.update()
        .where(records.c.record_id == sa.bindparam("rid"))
        .values(envelope=sa.bindparam("envelope"))
    )
    for start in range(0, len(relayed), CHUNK):
        chunk = dict(relayed[start : start + CHUNK])
        seqs = {seq: rid for rid, seq in chunk.items()}
        payloads = conn.execute(
            sa.select(feed.c.seq, feed.c.payload).where(feed.c.seq.in_(list(seqs)))
        ).all()
        if len(payloads) != len(seqs):
            missing = sorted(set(seqs) - {seq for seq, _ in payloads})[:5]
            raise RuntimeError(f"relay entries {missing} are missing: their envelopes are lost")
        filled = []
        for seq, payload in payloads:
            if not payload.startswith(RELAY_HEAD):
                raise RuntimeError(f"feed entry {seq} ({seqs[seq]}) is not a relay entry")
            envelope = payload[len(RELAY_HEAD) : payload.rindex(RELAY_REST)]
            filled.append({"rid": seqs[seq], "envelope": envelope})
        conn.execute(fill, filled)
    with op.batch_alter_table("federated_record") as batch_op:
        batch_op.alter_column("envelope", existing_type=sa.Text(), nullable=False)
        batch_op.drop_column("relay_seq")
