"""Recommendations followed up (issue 17 item 4): a study-visit report's recommendations as
items addressed to organisations of the registry and/or the EU level, each with a status and
its history; the mails telling the addressees; a report's withdrawal reason.

The free text `study_visit.recommendations` stays as it is (the report's summary of its
recommendations): its free-string addressees (`addressed_to`) cannot be matched to registry
organisations safely, so no item is made from it.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("study_visit") as batch_op:
        batch_op.add_column(sa.Column("withdrawn_reason", sa.Text(), nullable=True))
    op.create_table(
        "recommendation",
        sa.Column("study_visit_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("eu_level", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=30), nullable=False),
        sa.Column("status_date", sa.Date(), nullable=True),
        sa.Column("history", sa.JSON(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["study_visit_id"],
            ["study_visit.id"],
            name=op.f("fk_recommendation_study_visit_id_study_visit"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recommendation")),
    )
    with op.batch_alter_table("recommendation") as batch_op:
        batch_op.create_index(batch_op.f("ix_recommendation_status"), ["status"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_recommendation_study_visit_id"), ["study_visit_id"], unique=False
        )
    op.create_table(
        "recommendation_addressee",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("recommendation_id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_recommendation_addressee_organisation_id_organisation"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["recommendation_id"],
            ["recommendation.id"],
            name=op.f("fk_recommendation_addressee_recommendation_id_recommendation"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recommendation_addressee")),
        sa.UniqueConstraint(
            "recommendation_id",
            "organisation_id",
            name=op.f("uq_recommendation_addressee_recommendation_id_organisation_id"),
        ),
    )
    with op.batch_alter_table("recommendation_addressee") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_recommendation_addressee_organisation_id"),
            ["organisation_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_recommendation_addressee_recommendation_id"),
            ["recommendation_id"],
            unique=False,
        )
    op.create_table(
        "recommendation_notice",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("study_visit_id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_recommendation_notice_organisation_id_organisation"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["study_visit_id"],
            ["study_visit.id"],
            name=op.f("fk_recommendation_notice_study_visit_id_study_visit"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recommendation_notice")),
        sa.UniqueConstraint(
            "study_visit_id",
            "organisation_id",
            name=op.f("uq_recommendation_notice_study_visit_id_organisation_id"),
        ),
    )
    with op.batch_alter_table("recommendation_notice") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_recommendation_notice_organisation_id"),
            ["organisation_id"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_recommendation_notice_state"), ["state"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_recommendation_notice_study_visit_id"), ["study_visit_id"], unique=False
        )


def downgrade() -> None:
    op.drop_table("recommendation_notice")
    op.drop_table("recommendation_addressee")
    op.drop_table("recommendation")
    with op.batch_alter_table("study_visit") as batch_op:
        batch_op.drop_column("withdrawn_reason")
