"""The National Registration Database: organisations, contact points, cooperation protocols."""

import uuid
from collections.abc import Collection, Iterable
from importlib import import_module
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

# The registry's tables are mapped whenever the registry is imported: the other domains'
# foreign keys to them (a practice's organisations) take their column types from them, and
# without them read plain strings where the code expects UUIDs.
import registry.models  # noqa: F401

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from registry import privacy as privacy
    from registry.models import Organisation
else:

    def __getattr__(name: str) -> Any:
        """`registry.privacy`, imported when first used: importing the registry's vocabulary
        (an enum) imported its schemas and services with it, ~0.5 s of CPU."""
        if name != "privacy":
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        return import_module("registry.privacy")


def people_names(session: Session) -> list[str]:
    """The names of the registry's contact points (a job's session), for the personal-data
    gate: people this node knows."""
    from registry.models import ContactPoint

    return [name for name in session.scalars(select(ContactPoint.name)) if name]


class PublicOrganisation(NamedTuple):
    """What of an organisation a shared record may name: its name and its country."""

    name: str
    country: str


def public_organisations(
    session: Session, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, PublicOrganisation]:
    """The name and country of each of these organisations that exists (a job's session)."""
    from registry.models import Organisation

    rows = session.execute(
        select(Organisation.id, Organisation.name, Organisation.country).where(
            Organisation.id.in_(list(ids))
        )
    )
    return {row.id: PublicOrganisation(row.name, row.country) for row in rows}


def primary_contact_emails(session: Session, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The e-mail address of each of these organisations' active primary contact point (a
    job's session): whom to tell that something is addressed to the organisation."""
    from registry.models import ContactPoint

    rows = session.execute(
        select(ContactPoint.organisation_id, ContactPoint.email)
        .where(
            ContactPoint.organisation_id.in_(list(ids)),
            ContactPoint.is_primary.is_(True),
            ContactPoint.status == "active",
            ContactPoint.email.is_not(None),
        )
        .order_by(ContactPoint.created_at)
    )
    found: dict[uuid.UUID, str] = {}
    for organisation_id, email in rows:
        if email:
            found.setdefault(organisation_id, email)
    return found


# --- organisations, for the practice database (the registry's modules load on first call) --


async def organisation_exists(session: "AsyncSession", organisation_id: uuid.UUID) -> bool:
    from registry import repository

    return await repository.organisation_exists(session, organisation_id)


async def organisation_names(session: "AsyncSession", ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The name of each of these organisations that exists."""
    from registry import repository

    return await repository.organisation_names(session, ids)


async def organisation_refs(session: "AsyncSession") -> dict[uuid.UUID, str]:
    """The ref of every organisation that has one: how exports name organisations."""
    from registry import repository

    return await repository.organisation_refs(session)


def organisation_labels(session: Session, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The name of each of these organisations that exists, in a synchronous session
    (indexing and jobs)."""
    from registry import repository

    return repository.organisation_labels(session, ids)


async def find_organisation_by_ref(session: "AsyncSession", ref: str) -> "Organisation | None":
    from registry import repository

    return await repository.find_organisation_by_ref(session, ref)
