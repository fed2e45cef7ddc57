"""Practices, study-visit reports, the search index (FTS5 / PostgreSQL full text), the outbox.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 12:01:32.420908
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "outbox_message",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("topic", sa.String(length=60), nullable=False),
        sa.Column("entity_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=2000), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_message")),
    )
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_outbox_message_processed_at"), ["processed_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_outbox_message_topic"), ["topic"], unique=False)

    op.create_table(
        "practice",
        sa.Column("ref", sa.String(length=100), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("original_title", sa.String(length=300), nullable=True),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("problem_addressed", sa.Text(), nullable=True),
        sa.Column("rationale", sa.Text(), nullable=True),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("geographical_scope", sa.String(length=20), nullable=True),
        sa.Column("translations", sa.JSON(), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=True),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("staffing", sa.Text(), nullable=True),
        sa.Column("intensity_duration", sa.Text(), nullable=True),
        sa.Column("resources_funding", sa.Text(), nullable=True),
        sa.Column("evaluation_type", sa.String(length=30), nullable=False),
        sa.Column("outcomes", sa.JSON(), nullable=False),
        sa.Column("review_label", sa.String(length=20), nullable=False),
        sa.Column("sustainability", sa.Text(), nullable=True),
        sa.Column("transferability", sa.Text(), nullable=True),
        sa.Column("lessons_learned", sa.Text(), nullable=True),
        sa.Column("links", sa.JSON(), nullable=False),
        sa.Column("licence", sa.String(length=30), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("withdrawn_reason", sa.Text(), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("is_sample", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_practice")),
        sa.UniqueConstraint("ref", name=op.f("uq_practice_ref")),
    )
    with op.batch_alter_table("practice", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_practice_country"), ["country"], unique=False)
        batch_op.create_index(batch_op.f("ix_practice_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_practice_status"), ["status"], unique=False)

    op.create_table(
        "search_document",
        sa.Column("doc_no", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("sort_date", sa.Date(), nullable=True),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("title_norm", sa.Text(), nullable=False),
        sa.Column("body_norm", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("doc_no", name=op.f("pk_search_document")),
        sa.UniqueConstraint("record_id", name=op.f("uq_search_document_record_id")),
    )
    with op.batch_alter_table("search_document", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_search_document_seq"), ["seq"], unique=False)

    op.create_table(
        "search_facet",
        sa.Column("doc_no", sa.Integer(), nullable=False),
        sa.Column("facet", sa.String(length=40), nullable=False),
        sa.Column("value", sa.String(length=60), nullable=False),
        sa.PrimaryKeyConstraint("doc_no", "facet", "value", name=op.f("pk_search_facet")),
    )
    with op.batch_alter_table("search_facet", schema=None) as batch_op:
        batch_op.create_index("ix_search_facet_facet_value", ["facet", "value"], unique=False)

    op.create_table(
        "search_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_state")),
    )
    op.create_table(
        "practice_organisation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("practice_id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=True),
        sa.Column("name", sa.String(length=300), nullable=True),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_practice_organisation_organisation_id_organisation"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["practice_id"],
            ["practice.id"],
            name=op.f("fk_practice_organisation_practice_id_practice"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_practice_organisation")),
    )
    with op.batch_alter_table("practice_organisation", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_practice_organisation_organisation_id"),
            ["organisation_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_practice_organisation_practice_id"), ["practice_id"], unique=False
        )

    op.create_table(
        "practice_term",
        sa.Column("practice_id", sa.Uuid(), nullable=False),
        sa.Column("facet", sa.String(length=40), nullable=False),
        sa.Column("value", sa.String(length=60), nullable=False),
        sa.ForeignKeyConstraint(
            ["practice_id"],
            ["practice.id"],
            name=op.f("fk_practice_term_practice_id_practice"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("practice_id", "facet", "value", name=op.f("pk_practice_term")),
    )
    op.create_table(
        "study_visit",
        sa.Column("ref", sa.String(length=100), nullable=True),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("organising_authority", sa.JSON(), nullable=False),
        sa.Column("host_country", sa.String(length=2), nullable=False),
        sa.Column("host_organisations", sa.JSON(), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("programme", sa.Text(), nullable=True),
        sa.Column("delegation", sa.JSON(), nullable=False),
        sa.Column("participant_names", sa.JSON(), nullable=False),
        sa.Column("observed_practice_ids", sa.JSON(), nullable=False),
        sa.Column("observations", sa.Text(), nullable=True),
        sa.Column("findings", sa.Text(), nullable=True),
        sa.Column("recommendations", sa.Text(), nullable=True),
        sa.Column("transferability", sa.Text(), nullable=True),
        sa.Column("addressed_to", sa.JSON(), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("is_sample", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["user_account.id"],
            name=op.f("fk_study_visit_author_id_user_account"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_study_visit")),
        sa.UniqueConstraint("ref", name=op.f("uq_study_visit_ref")),
    )
    with op.batch_alter_table("study_visit", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_study_visit_author_id"), ["author_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_study_visit_host_country"), ["host_country"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_study_visit_status"), ["status"], unique=False)

    op.create_table(
        "study_visit_comment",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("study_visit_id", sa.Uuid(), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=True),
        sa.Column("author_label", sa.String(length=320), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("action", sa.String(length=30), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["user_account.id"],
            name=op.f("fk_study_visit_comment_author_id_user_account"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["study_visit_id"],
            ["study_visit.id"],
            name=op.f("fk_study_visit_comment_study_visit_id_study_visit"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_study_visit_comment")),
    )
    with op.batch_alter_table("study_visit_comment", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_study_visit_comment_study_visit_id"), ["study_visit_id"], unique=False
        )

    _create_full_text()
    op.execute("INSERT INTO search_state (id, seq) VALUES (1, 0)")


def _create_full_text() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # External-content FTS5 over the folded text in search_document; prefix indexes make
        # as-you-type prefix queries cheap.
        op.execute(
            "CREATE VIRTUAL TABLE practice_fts USING fts5("
            "title_norm, body_norm, content='search_document', content_rowid='doc_no', "
            "prefix='2 3 4', tokenize='unicode61 remove_diacritics 0')"
        )
    else:
        op.execute(
            "ALTER TABLE search_document ADD COLUMN tsv tsvector GENERATED ALWAYS AS ("
            "setweight(to_tsvector('simple', title_norm), 'A') || "
            "setweight(to_tsvector('simple', body_norm), 'B')) STORED"
        )
        op.execute("CREATE INDEX ix_search_document_tsv ON search_document USING gin (tsv)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE practice_fts")
    with op.batch_alter_table("study_visit_comment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_study_visit_comment_study_visit_id"))

    op.drop_table("study_visit_comment")
    with op.batch_alter_table("study_visit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_study_visit_status"))
        batch_op.drop_index(batch_op.f("ix_study_visit_host_country"))
        batch_op.drop_index(batch_op.f("ix_study_visit_author_id"))

    op.drop_table("study_visit")
    op.drop_table("practice_term")
    with op.batch_alter_table("practice_organisation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_practice_organisation_practice_id"))
        batch_op.drop_index(batch_op.f("ix_practice_organisation_organisation_id"))

    op.drop_table("practice_organisation")
    op.drop_table("search_state")
    with op.batch_alter_table("search_facet", schema=None) as batch_op:
        batch_op.drop_index("ix_search_facet_facet_value")

    op.drop_table("search_facet")
    with op.batch_alter_table("search_document", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_search_document_seq"))

    op.drop_table("search_document")
    with op.batch_alter_table("practice", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_practice_status"))
        batch_op.drop_index(batch_op.f("ix_practice_kind"))
        batch_op.drop_index(batch_op.f("ix_practice_country"))

    op.drop_table("practice")
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_message_topic"))
        batch_op.drop_index(batch_op.f("ix_outbox_message_processed_at"))

    op.drop_table("outbox_message")
