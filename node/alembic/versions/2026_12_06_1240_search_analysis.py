"""Search analysis (issue 16): the index holds word forms analysed in each record's language.

`search_state.analysis_version` says which analysis (`practices.search.analysis.
ANALYSIS_VERSION`) the indexed text was made with: 0, the folded text of before, so the first
start after this step reindexes everything (a node's practices, a hub's pool); an index with
nothing in it is already at this step's analysis (1). On SQLite,
`practice_fts_vocab` (fts5vocab) lists the index's terms with their document counts: the
vocabulary typos are corrected against (PostgreSQL reads it with ts_stat).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 12:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "search_state",
        sa.Column("analysis_version", sa.Integer(), server_default="0", nullable=False),
    )
    op.execute(
        "UPDATE search_state SET analysis_version = 1 "
        "WHERE NOT EXISTS (SELECT 1 FROM search_document WHERE active)"
    )
    if op.get_bind().dialect.name == "sqlite":
        op.execute("CREATE VIRTUAL TABLE practice_fts_vocab USING fts5vocab(practice_fts, 'row')")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE practice_fts_vocab")
    with op.batch_alter_table("search_state") as batch_op:
        batch_op.drop_column("analysis_version")
