"""Search (issue 16): the full-text index's document count made right again, on SQLite.

Clearing the index for a reindex (`integra search reindex`, or a new analysis at start-up)
asked FTS5 to 'rebuild' from `search_document`, whose rows had all just been emptied: each
was counted as a document, and each record indexed again was counted a second time. BM25
ranks with that count and the average length it divides, so such an index ranked some hits
in another order than a fresh one. The code now empties the index with 'delete-all'; an index
whose count differs from its active documents is filled again from them (what migration 0025
did for every index: the same words, now ranked as a fresh index ranks them).

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-07 03:00:00
"""

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# FTS5 keeps its document count and token totals in the row 1 of its data table (written when
# a transaction ends: after migration 0025 in the same one, absent, and the index is filled
# again, as it was just before).
AVERAGES = "SELECT block FROM practice_fts_data WHERE id = 1"


def _varint(data: bytes) -> int:
    """The first SQLite variable-length integer of ``data`` (FTS5 writes its counts so)."""
    value = 0
    for i, byte in enumerate(data[:9]):
        if i == 8:
            return (value << 8) | byte
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value
    return value


def upgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name != "sqlite":
        return  # PostgreSQL's ranking reads no count of documents
    active = connection.execute(text("SELECT count(*) FROM search_document WHERE active")).scalar()
    # what BM25 divides by, and the lengths it averages (the rows emptied by a clear had one)
    averages = connection.execute(text(AVERAGES)).scalar()
    counted = _varint(bytes(averages)) if averages else 0
    sized = connection.execute(text("SELECT count(*) FROM practice_fts_docsize")).scalar()
    if counted == sized == active:
        return
    op.execute("INSERT INTO practice_fts(practice_fts) VALUES ('delete-all')")
    op.execute(
        "INSERT INTO practice_fts(rowid, title_norm, body_norm) "
        "SELECT doc_no, title_norm, body_norm FROM search_document WHERE active ORDER BY doc_no"
    )


def downgrade() -> None:
    pass  # the right count suits the code before too
