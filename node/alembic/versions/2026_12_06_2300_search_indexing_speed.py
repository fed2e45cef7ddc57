"""Search indexing speed (issue 16): fewer prefix indexes, one index fewer on the facets.

On SQLite the full-text index (`practice_fts`) kept prefix indexes for 2, 3 and 4 letters:
every term was written four times. The 4-letter one cost more than the other two together
(at 100,000 practices, 20 s of CPU for the full-text part of an indexing against 8 s
without it) and bought nothing: a 4-letter prefix is answered as fast from the terms that
start with it. The table is made again with prefixes of 2 and 3 letters and filled from
`search_document`'s active documents (the same words, the same matches and ranks), and its
vocabulary table (`practice_fts_vocab`) with it.

`ix_search_facet_facet_value (facet, value)` is the head of `ix_search_facet_documents
(facet, value, doc_no)` (migration 0023): every query that used it uses the other, and each
facet row written kept both up to date.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-06 23:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _full_text(prefixes: str) -> None:
    op.execute("DROP TABLE practice_fts_vocab")
    op.execute("DROP TABLE practice_fts")
    op.execute(
        "CREATE VIRTUAL TABLE practice_fts USING fts5("
        "title_norm, body_norm, content='search_document', content_rowid='doc_no', "
        f"prefix='{prefixes}', tokenize='unicode61 remove_diacritics 0')"
    )
    # what the index held: the active documents (a removed one's text is empty, and out)
    op.execute(
        "INSERT INTO practice_fts(rowid, title_norm, body_norm) "
        "SELECT doc_no, title_norm, body_norm FROM search_document WHERE active ORDER BY doc_no"
    )
    op.execute("CREATE VIRTUAL TABLE practice_fts_vocab USING fts5vocab(practice_fts, 'row')")


def upgrade() -> None:
    op.execute("DROP INDEX ix_search_facet_facet_value")
    if op.get_bind().dialect.name == "sqlite":
        _full_text("2 3")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _full_text("2 3 4")
    op.execute("CREATE INDEX ix_search_facet_facet_value ON search_facet (facet, value)")
