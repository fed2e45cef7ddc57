import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from node.core.db import Base, IdMixin, TimestampMixin


class Practice(IdMixin, TimestampMixin, Base):
    """A practice, policy, tool, training kit or guide."""

    __tablename__ = "practice"

    ref: Mapped[str | None] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(20), index=True)
    title: Mapped[str] = mapped_column(String(300))
    original_title: Mapped[str | None] = mapped_column(String(300))
    language: Mapped[str] = mapped_column(String(2))
    summary: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    problem_addressed: Mapped[str | None] = mapped_column(Text)
    rationale: Mapped[str | None] = mapped_column(Text)
    country: Mapped[str | None] = mapped_column(String(2), index=True)
    geographical_scope: Mapped[str | None] = mapped_column(String(20))
    translations: Mapped[list[Any]] = mapped_column(default=list)
    start_date: Mapped[date | None]
    end_date: Mapped[date | None]
    staffing: Mapped[str | None] = mapped_column(Text)
    intensity_duration: Mapped[str | None] = mapped_column(Text)
    resources_funding: Mapped[str | None] = mapped_column(Text)
    evaluation_type: Mapped[str] = mapped_column(String(30), default="none")
    outcomes: Mapped[list[Any]] = mapped_column(default=list)
    review_label: Mapped[str] = mapped_column(String(20), default="self_reported")
    sustainability: Mapped[str | None] = mapped_column(Text)
    transferability: Mapped[str | None] = mapped_column(Text)
    lessons_learned: Mapped[str | None] = mapped_column(Text)
    links: Mapped[list[Any]] = mapped_column(default=list)
    licence: Mapped[str] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(20), default="draft", index=True)
    withdrawn_reason: Mapped[str | None] = mapped_column(Text)
    published_at: Mapped[datetime | None]
    is_sample: Mapped[bool] = mapped_column(default=False)
    # Set by the federation while the personal-data gate holds the published version (through
    # `practices.mark_held`): only signed-in users of this node see the record meanwhile.
    held: Mapped[bool] = mapped_column(default=False, server_default=false(), index=True)
    # Who may see it: public (anyone), network (signed-in professionals) or national (this
    # node's signed-in users; it never leaves the node). See practices.service.change_scope.
    scope: Mapped[str] = mapped_column(String(10), default="public", server_default="public")
    version: Mapped[int] = mapped_column(default=1)

    terms: Mapped[list["PracticeTerm"]] = relationship(
        lazy="raise", cascade="all, delete-orphan", order_by="PracticeTerm.value"
    )
    organisations: Mapped[list["PracticeOrganisation"]] = relationship(
        lazy="raise", cascade="all, delete-orphan", order_by="PracticeOrganisation.position"
    )

    __mapper_args__ = {"version_id_col": version}

    def terms_of(self, facet: str) -> list[str]:
        return [t.value for t in self.terms if t.facet == facet]


class PracticeTerm(Base):
    """A controlled-vocabulary term (intervention type, setting, target group, ...)."""

    __tablename__ = "practice_term"

    practice_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("practice.id", ondelete="CASCADE"), primary_key=True
    )
    facet: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(String(60), primary_key=True)


class PracticeOrganisation(Base):
    """A responsible or partner body: a registry organisation, or a free name for others."""

    __tablename__ = "practice_organisation"

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("practice.id", ondelete="CASCADE"), index=True
    )
    organisation_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("organisation.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str | None] = mapped_column(String(300))
    role: Mapped[str] = mapped_column(String(20))
    position: Mapped[int] = mapped_column(default=0)
