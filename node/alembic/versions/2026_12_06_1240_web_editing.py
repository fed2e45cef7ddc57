"""Practices and study-visit editing in the browser (owner: helper web-editing).

PLACEHOLDER: an empty step reserved so that parallel work keeps one linear chain. Its owner fills
upgrade()/downgrade() and rewrites this docstring; an unused placeholder is removed before landing.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 12:40:00
"""

from collections.abc import Sequence

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
