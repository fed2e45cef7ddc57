"""Search speed (issues 16 and 18): two indexes.

Each facet value's documents, in order (`search_facet (facet, value, doc_no)`): a search
process loads its facet bitsets at start by one aggregate over this index alone, rather than
looking every row up (1.2 s of CPU at 100,000 practices on SQLite; 0.16 s with it).

Every anonymous search leaves out the published practices the personal-data gate holds and
those not shared publicly (`practices.repository.held_practice_ids`): a handful, found
until now by reading every practice (0.6 s at 100,000 on PostgreSQL, per search). A partial
index holds just them; the query names its condition word for word, so that both databases
use it.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06 13:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The same condition as `practices.search.service.HIDDEN_CONDITION`.
HIDDEN_CONDITION = "status = 'published' AND (held OR scope <> 'public')"


def upgrade() -> None:
    op.execute(f"CREATE INDEX ix_practice_hidden ON practice (id) WHERE {HIDDEN_CONDITION}")
    op.execute("CREATE INDEX ix_search_facet_documents ON search_facet (facet, value, doc_no)")


def downgrade() -> None:
    op.execute("DROP INDEX ix_search_facet_documents")
    op.execute("DROP INDEX ix_practice_hidden")
