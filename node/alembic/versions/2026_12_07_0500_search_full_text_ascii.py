"""Search indexing speed (issue 16): the full-text index reads its text with FTS5's `ascii`
tokenizer, on SQLite.

What `practice_fts` indexes is already analysed (`practices.search.analysis`): terms of
letters and digits only, folded, one space apart. `unicode61` classified and folded every
character of it again; `ascii` splits at ASCII spaces and punctuation and takes every other
character as it is, which gives the same terms for this text with 12% fewer instructions for
the whole full-text insert (5,000 of `bench/search.py`'s practices, callgrind: 1.86 billion
against 2.11). Of the 128,000 characters a term can hold, `unicode61` reads 21 otherwise (New
Tai Lue vowel signs and two Vedic signs, which it takes for separators: the analysis keeps
them inside a word, and so does `ascii` now). The table is made again and filled from
`search_document`'s active documents, as migration 0025 did: the same terms, counts and ranks.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-07 05:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _full_text(tokenizer: str) -> None:
    op.execute("DROP TABLE practice_fts_vocab")
    op.execute("DROP TABLE practice_fts")
    op.execute(
        "CREATE VIRTUAL TABLE practice_fts USING fts5("
        "title_norm, body_norm, content='search_document', content_rowid='doc_no', "
        f"prefix='2 3', tokenize='{tokenizer}')"
    )
    op.execute(
        "INSERT INTO practice_fts(rowid, title_norm, body_norm) "
        "SELECT doc_no, title_norm, body_norm FROM search_document WHERE active ORDER BY doc_no"
    )
    op.execute("CREATE VIRTUAL TABLE practice_fts_vocab USING fts5vocab(practice_fts, 'row')")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _full_text("ascii")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _full_text("unicode61 remove_diacritics 0")
