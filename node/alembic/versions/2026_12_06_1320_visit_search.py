"""Study-visit reports in search (issue 16 item 4): no schema change.

A published report is a document of the practices' own search index (`search_document`,
`search_facet`, `practice_fts` on SQLite, the `tsv` column on PostgreSQL; or Meilisearch),
told apart by its source facet (`local-visit`) and its kind (`study_visit`): it is analysed,
ranked, counted and corrected exactly as a practice, and needs no table of its own. The
reports published before this version are indexed by the first outbox sweep after start
(`practices.visit_index.catch_up_visits`), which also puts them back whenever the index is
rebuilt. The slot is kept, empty, so that the chain of revisions stays as reserved.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06 13:20:00
"""

from collections.abc import Sequence

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
