"""Sharing scope per practice and study-visit report (owner: helper scope).

PLACEHOLDER: an empty step reserved so that parallel work keeps one linear chain. Its owner fills
upgrade()/downgrade() and rewrites this docstring; an unused placeholder is removed before landing.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 12:00:00
"""

from collections.abc import Sequence

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
