import uuid
from datetime import date
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from node.core.db import Base, IdMixin, TimestampMixin


class Organisation(IdMixin, TimestampMixin, Base):
    """An agency, NGO, mechanism or body in the National Registration Database."""

    __tablename__ = "organisation"
    # The directory and the API list organisations by name (then id, the keyset cursor's tie).
    __table_args__ = (Index("ix_organisation_name_id", "name", "id"),)

    ref: Mapped[str | None] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    local_names: Mapped[list[Any]] = mapped_column(default=list)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    sector: Mapped[str] = mapped_column(String(40), index=True)
    level: Mapped[str] = mapped_column(String(40), index=True)
    country: Mapped[str] = mapped_column(String(2), index=True)
    region: Mapped[str | None] = mapped_column(String(200))
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("organisation.id", ondelete="SET NULL"), index=True
    )
    legal_basis: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    services: Mapped[list[Any]] = mapped_column(default=list)
    languages: Mapped[list[Any]] = mapped_column(default=list)
    website: Mapped[str | None] = mapped_column(String(500))
    address_street: Mapped[str | None] = mapped_column(String(300))
    address_locality: Mapped[str | None] = mapped_column(String(200))
    address_postal_code: Mapped[str | None] = mapped_column(String(20))
    address_region: Mapped[str | None] = mapped_column(String(200))
    single_point_of_contact: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(20), index=True, default="active")
    last_verified_date: Mapped[date | None]
    is_sample: Mapped[bool] = mapped_column(default=False)
    # Folded (case, accents) copy of the searchable text, so `q` matches across spellings.
    search_text: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[int] = mapped_column(default=1)

    identifiers: Mapped[list["OrganisationIdentifier"]] = relationship(
        lazy="raise", cascade="all, delete-orphan", order_by="OrganisationIdentifier.scheme"
    )
    terms: Mapped[list["OrganisationTerm"]] = relationship(
        lazy="raise", cascade="all, delete-orphan", order_by="OrganisationTerm.term"
    )
    contact_points: Mapped[list["ContactPoint"]] = relationship(
        lazy="raise", back_populates="organisation", order_by="ContactPoint.created_at"
    )

    __mapper_args__ = {"version_id_col": version}

    def terms_of(self, facet: str) -> list[str]:
        return [t.term for t in self.terms if t.facet == facet]


class OrganisationIdentifier(Base):
    """An identifier in an external register (HSDS `organization_identifier`)."""

    __tablename__ = "organisation_identifier"
    __table_args__ = (UniqueConstraint("scheme", "value"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"), index=True
    )
    scheme: Mapped[str] = mapped_column(String(100))
    value: Mapped[str] = mapped_column(String(200))


class OrganisationTerm(Base):
    """A controlled-vocabulary term attached to an organisation (areas, target groups)."""

    __tablename__ = "organisation_term"

    organisation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"), primary_key=True
    )
    facet: Mapped[str] = mapped_column(String(40), primary_key=True)
    term: Mapped[str] = mapped_column(String(60), primary_key=True, index=True)


class ContactPoint(IdMixin, TimestampMixin, Base):
    """A person or a functional role in an organisation. Personal data: never leaves the node."""

    __tablename__ = "contact_point"

    organisation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str | None] = mapped_column(String(200))
    title: Mapped[str | None] = mapped_column(String(200))
    department: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    phones: Mapped[list[Any]] = mapped_column(default=list)
    languages: Mapped[list[Any]] = mapped_column(default=list)
    hours: Mapped[str | None] = mapped_column(String(300))
    available_24_7: Mapped[bool] = mapped_column(default=False)
    is_primary: Mapped[bool] = mapped_column(default=False)
    last_verified_date: Mapped[date | None]
    status: Mapped[str] = mapped_column(String(20), default="active", index=True)
    is_sample: Mapped[bool] = mapped_column(default=False)
    version: Mapped[int] = mapped_column(default=1)

    organisation: Mapped[Organisation] = relationship(lazy="raise", back_populates="contact_points")

    __mapper_args__ = {"version_id_col": version}


class Protocol(IdMixin, TimestampMixin, Base):
    """A cooperation protocol or memorandum of understanding between organisations."""

    __tablename__ = "protocol"

    ref: Mapped[str | None] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    country: Mapped[str] = mapped_column(String(2), index=True)
    purpose: Mapped[str | None] = mapped_column(Text)
    principles: Mapped[str | None] = mapped_column(Text)
    information_sharing_rules: Mapped[str | None] = mapped_column(Text)
    reporting_procedure: Mapped[str | None] = mapped_column(Text)
    meeting_frequency: Mapped[str | None] = mapped_column(String(40))
    signed_date: Mapped[date | None]
    review_date: Mapped[date | None]
    status: Mapped[str] = mapped_column(String(20), default="draft", index=True)
    document_url: Mapped[str | None] = mapped_column(String(500))
    is_sample: Mapped[bool] = mapped_column(default=False)
    search_text: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[int] = mapped_column(default=1)

    parties: Mapped[list["ProtocolParty"]] = relationship(
        lazy="raise", cascade="all, delete-orphan", order_by="ProtocolParty.position"
    )

    __mapper_args__ = {"version_id_col": version}


class ProtocolParty(Base):
    __tablename__ = "protocol_party"

    protocol_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("protocol.id", ondelete="CASCADE"), primary_key=True
    )
    organisation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisation.id", ondelete="RESTRICT"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(40))
    responsibilities: Mapped[str | None] = mapped_column(Text)
    position: Mapped[int] = mapped_column(default=0)
