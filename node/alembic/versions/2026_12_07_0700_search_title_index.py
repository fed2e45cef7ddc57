"""Search on PostgreSQL: the titles' own full-text index, for ranking a broad match.

Ranking a match reads each document's whole `tsv` (detoasted, often decompressed): a broad
match (a prefix of three letters, 20,000 of 100,000 documents) took 110-140 ms ranked against
20-30 ms found unranked. As on SQLite, a match of more than `RANK_ALL` documents is now ranked
among its title matches only, which this index finds without reading any `tsv`: 6-9 ms for
such a prefix's 1,500-2,000 title matches. SQLite's full-text table has the title column
already (`title_norm : (...)`): nothing to do there.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-07 07:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE INDEX ix_search_document_title_tsv ON search_document "
            "USING gin (to_tsvector('simple', title_norm))"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_search_document_title_tsv")
