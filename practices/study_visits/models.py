"""The tables of study-visit reports (registered on the same metadata as the practices)."""

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from node.core.db import Base, IdMixin, TimestampMixin


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
    submitted_at: Mapped[datetime | None]
    published_at: Mapped[datetime | None]
    is_sample: Mapped[bool] = mapped_column(default=False)
    # Who may see it (as a practice's `scope`): signed-in professionals by default.
    scope: Mapped[str] = mapped_column(String(10), default="network", server_default="network")
    version: Mapped[int] = mapped_column(default=1)

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
