"""Organisations listed by name without sorting the whole table: an index on (name, id), the
order of the directory, the API's list and its keyset cursor (issue 19).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 12:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_organisation_name_id", "organisation", ["name", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_organisation_name_id", table_name="organisation")
