"""Web accounts: password reset links and the like (owner: helper web-admin).

PLACEHOLDER: an empty step reserved so that parallel work keeps one linear chain. Its owner fills
upgrade()/downgrade() and rewrites this docstring; an unused placeholder is removed before landing.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 12:20:00
"""

from collections.abc import Sequence

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
