"""The hub keeps each record's body once: inside the origin's signed envelope.

The body was stored a second time beside the envelope (and a third in the hub's own feed, as
the relayed envelope); a third of what an import wrote. It is now read from the envelope.
PostgreSQL and SQLite 3.35 or newer drop the column in place; an older SQLite copies the table.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 21:00:00
"""

import json
import sqlite3
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite" and sqlite3.sqlite_version_info < (3, 35):
        with op.batch_alter_table("federated_record") as batch_op:  # the table copied over
            batch_op.drop_column("body")
    else:
        op.drop_column("federated_record", "body")


def downgrade() -> None:
    op.add_column("federated_record", sa.Column("body", sa.JSON(), nullable=True))
    records = sa.table(
        "federated_record",
        sa.column("record_id", sa.String),
        sa.column("withdrawn", sa.Boolean),
        sa.column("envelope", sa.Text),
        sa.column("body", sa.JSON(none_as_null=True)),
    )
    conn = op.get_bind()
    live = conn.execute(
        sa.select(records.c.record_id, records.c.envelope).where(records.c.withdrawn.is_(False))
    )
    for record_id, envelope in live:
        conn.execute(
            records.update()
            .where(records.c.record_id == record_id)
            .values(body=json.loads(envelope)["payload"]["body"])
        )
