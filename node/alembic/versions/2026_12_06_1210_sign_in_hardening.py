"""Sign-in and token hardening (owner: helper ops).

PLACEHOLDER: an empty step reserved so that parallel work keeps one linear chain. Its owner fills
upgrade()/downgrade() and rewrites this docstring; an unused placeholder is removed before landing.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 12:10:00
"""

from collections.abc import Sequence

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
