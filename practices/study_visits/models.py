"""The tables of study-visit reports (registered on the same metadata as the practices)."""

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from node.core.db import Base, IdMixin, TimestampMixin, utcnow


class StudyVisit(IdMixin, TimestampMixin, Base):
    """A study-visit report, submitted by a professional and reviewed by the National Point."""

    __tablename__ = "study_visit"

    ref: Mapped[str | None] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    language: Mapped[str] = mapped_column(String(2))
    organising_authority: Mapped[dict[str, Any]] = mapped_column(default=dict)
    host_country: Mapped[str] = mapped_column(String(2), index=True)
    host_organisations: Mapped[list[Any]] = mapped_column(default=list)
    start_date: Mapped[date]
    end_date: Mapped[date]
    purpose: Mapped[str] = mapped_column(Text)
    programme: Mapped[str | None] = mapped_column(Text)
    delegation: Mapped[list[Any]] = mapped_column(default=list)
    # Personal data: stays on this node, shown to signed-in users only, never exported.
    participant_names: Mapped[list[Any]] = mapped_column(default=list)
    observed_practice_ids: Mapped[list[Any]] = mapped_column(default=list)
    observations: Mapped[str | None] = mapped_column(Text)
    findings: Mapped[str | None] = mapped_column(Text)
    recommendations: Mapped[str | None] = mapped_column(Text)
    transferability: Mapped[str | None] = mapped_column(Text)
    addressed_to: Mapped[list[Any]] = mapped_column(default=list)
    author_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), index=True
    )
    status: Mapped[str] = mapped_column(String(20), default="draft", index=True)
    withdrawn_reason: Mapped[str | None] = mapped_column(Text)
    submitted_at: Mapped[datetime | None]
    published_at: Mapped[datetime | None]
    is_sample: Mapped[bool] = mapped_column(default=False)
    # Who may see it (as a practice's `scope`): signed-in professionals by default.
    scope: Mapped[str] = mapped_column(String(10), default="network", server_default="network")
    version: Mapped[int] = mapped_column(default=1)

    # Its recommendations as items, each followed up (loaded with the report: few per report).
    recommendation_items: Mapped[list["Recommendation"]] = relationship(
        lazy="selectin",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Recommendation.position",
    )

    __mapper_args__ = {"version_id_col": version}


class StudyVisitComment(Base):
    """A review comment by the National Point (or a reply by the author)."""

    __tablename__ = "study_visit_comment"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    study_visit_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("study_visit.id", ondelete="CASCADE"), index=True
    )
    author_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    author_label: Mapped[str] = mapped_column(String(320))
    body: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(String(30))
    created_at: Mapped[datetime]


class Recommendation(IdMixin, TimestampMixin, Base):
    """One recommendation of a report, addressed to organisations of the registry and/or the
    EU level, with what became of it (`status`, and every change in `history`: the status,
    the day and a note; who changed it is in the audit log, never here)."""

    __tablename__ = "recommendation"

    study_visit_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("study_visit.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(default=0)
    text: Mapped[str] = mapped_column(Text)
    eu_level: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(30), default="received", index=True)
    status_date: Mapped[date | None]
    history: Mapped[list[Any]] = mapped_column(default=list)

    addressees: Mapped[list["RecommendationAddressee"]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="RecommendationAddressee.id"
    )

    @property
    def organisation_ids(self) -> list[uuid.UUID]:
        return [a.organisation_id for a in self.addressees]


class RecommendationAddressee(Base):
    """An organisation of the registry a recommendation is addressed to."""

    __tablename__ = "recommendation_addressee"
    __table_args__ = (UniqueConstraint("recommendation_id", "organisation_id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    recommendation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("recommendation.id", ondelete="CASCADE"), index=True
    )
    organisation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"), index=True
    )


class RecommendationNotice(Base):
    """The mail telling an addressee (its primary contact point) that a published report
    recommends something to it: `pending` until sent, `sent`, `failed` (retried by the sweep,
    with the last error), or `no_contact` (the organisation has no primary contact point with
    an e-mail address). The address itself is looked up when sending, never kept here."""

    __tablename__ = "recommendation_notice"
    __table_args__ = (UniqueConstraint("study_visit_id", "organisation_id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    study_visit_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("study_visit.id", ondelete="CASCADE"), index=True
    )
    organisation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"), index=True
    )
    state: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
