"""Organisations: the rules that hold before one is added or changed, and how one reads."""

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from node.core import audit
from node.core.auth import Principal
from node.core.db import sync_collection, utcnow
from node.core.errors import Conflict, Forbidden, InvalidInput, NotFound, check_version
from node.core.schemas import given
from node.core.text import fold
from registry import repository
from registry.models import ContactPoint, Organisation, OrganisationIdentifier, OrganisationTerm
from registry.schemas import (
    ContactPointRead,
    OrganisationCreate,
    OrganisationRead,
    OrganisationUpdate,
)

TERM_FACETS = {"areas": "area", "target_groups": "target_group"}
ADDRESS_COLUMNS = ("street", "locality", "postal_code", "region")


async def get_organisation(
    session: AsyncSession, organisation_id: uuid.UUID, *, with_contacts: bool = False
) -> Organisation:
    organisation = await repository.get_organisation(
        session, organisation_id, with_contacts=with_contacts
    )
    if organisation is None:
        raise NotFound(f"No organisation with id {organisation_id}.")
    return organisation


def organisation_read(
    organisation: Organisation, *, contact_points: Sequence[ContactPoint] | None = None
) -> OrganisationRead:
    address = {k: getattr(organisation, f"address_{k}") for k in ADDRESS_COLUMNS}
    values: dict[str, Any] = {
        name: getattr(organisation, name)
        for name in OrganisationRead.model_fields
        if name not in ("identifiers", "areas", "target_groups", "address", "contact_points")
    }
    values |= {
        "identifiers": [{"scheme": i.scheme, "value": i.value} for i in organisation.identifiers],
        "areas": organisation.terms_of("area"),
        "target_groups": organisation.terms_of("target_group"),
        "address": address if any(address.values()) else None,
    }
    if contact_points is not None:
        values["contact_points"] = [contact_point_dict(c) for c in contact_points]
    return OrganisationRead.model_validate(values)


def contact_point_dict(contact: ContactPoint) -> dict[str, Any]:
    return {name: getattr(contact, name) for name in ContactPointRead.model_fields}


def _search_text(organisation: Organisation) -> str:
    parts = [organisation.name, organisation.ref or "", organisation.description or ""]
    parts += [n["name"] for n in organisation.local_names]
    parts += organisation.services
    parts += [i.value for i in organisation.identifiers]
    return fold(" \n".join(parts))


async def _check_unique_keys(
    session: AsyncSession,
    *,
    ref: str | None,
    identifiers: list[tuple[str, str]],
    own_id: uuid.UUID | None,
) -> None:
    if ref is not None:
        holder = await repository.ref_taken(session, Organisation, ref)
        if holder is not None and holder != own_id:
            raise Conflict(f"The ref '{ref}' is already used by organisation {holder}.")
    owners = await repository.identifier_owners(session, identifiers)
    for (scheme, value), holder in owners.items():
        if holder != own_id:
            raise Conflict(
                f"The identifier {scheme}:{value} is already registered to organisation {holder}."
            )


async def _check_parent(
    session: AsyncSession, parent_id: uuid.UUID | None, own_id: uuid.UUID | None
) -> None:
    if parent_id is None:
        return
    if not await repository.organisation_exists(session, parent_id):
        raise InvalidInput("parent_id", f"no organisation with id {parent_id}")
    if own_id is not None and (
        parent_id == own_id or own_id in await repository.ancestors(session, parent_id)
    ):
        raise InvalidInput("parent_id", "an organisation cannot sit below itself")


def _apply(organisation: Organisation, values: dict[str, Any]) -> list[str]:
    """Copy schema values onto the model; return the names of the fields that changed."""
    changed: list[str] = []
    for name, value in values.items():
        if name == "identifiers":
            if sync_collection(
                organisation.identifiers,
                [(i["scheme"], i["value"]) for i in value],
                key=lambda i: (i.scheme, i.value),
                make=lambda k: OrganisationIdentifier(scheme=k[0], value=k[1]),
            ):
                changed.append(name)
        elif name in TERM_FACETS:
            facet = TERM_FACETS[name]
            if sync_collection(
                organisation.terms,
                [(facet, str(v)) for v in value]
                + [(t.facet, t.term) for t in organisation.terms if t.facet != facet],
                key=lambda t: (t.facet, t.term),
                make=lambda k: OrganisationTerm(facet=k[0], term=k[1]),
            ):
                changed.append(name)
        elif name == "address":
            value = value or {}
            for key in ADDRESS_COLUMNS:
                if getattr(organisation, f"address_{key}") != value.get(key):
                    setattr(organisation, f"address_{key}", value.get(key))
                    if name not in changed:
                        changed.append(name)
        elif name == "website":
            value = str(value) if value is not None else None
            if organisation.website != value:
                organisation.website = value
                changed.append(name)
        elif getattr(organisation, name) != value:
            setattr(organisation, name, value)
            changed.append(name)
    return changed


def _dump(data: OrganisationCreate | OrganisationUpdate, *, partial: bool) -> dict[str, Any]:
    values = given(data) if partial else data.model_dump(mode="python")
    if "website" in values and values["website"] is not None:
        values["website"] = str(values["website"])
    return values


async def create_organisation(
    session: AsyncSession, data: OrganisationCreate, *, by: Principal, is_sample: bool = False
) -> Organisation:
    if not by.is_admin:
        raise Forbidden("Only the National Point's administrators add organisations.")
    keys = [(i.scheme, i.value) for i in data.identifiers]
    await _check_unique_keys(session, ref=data.ref, identifiers=keys, own_id=None)
    await _check_parent(session, data.parent_id, None)
    organisation = Organisation(is_sample=is_sample, identifiers=[], terms=[], local_names=[])
    _apply(organisation, _dump(data, partial=False))
    organisation.search_text = _search_text(organisation)
    session.add(organisation)
    await session.flush()
    audit.record(
        session, by, action="create", entity_type="organisation", entity_id=organisation.id
    )
    return organisation


async def update_organisation(
    session: AsyncSession,
    organisation_id: uuid.UUID,
    data: OrganisationUpdate,
    *,
    expected_version: int,
    by: Principal,
) -> Organisation:
    organisation = await get_organisation(session, organisation_id)
    if not by.may_edit(organisation.id):
        raise Forbidden("You may edit only the organisations you are assigned to.")
    check_version(expected_version, organisation.version, "organisation")
    return await apply_organisation_changes(session, organisation, _dump(data, partial=True), by=by)


async def apply_organisation_changes(
    session: AsyncSession, organisation: Organisation, values: dict[str, Any], *, by: Principal
) -> Organisation:
    keys = [(i["scheme"], i["value"]) for i in values.get("identifiers") or []]
    await _check_unique_keys(
        session, ref=values.get("ref"), identifiers=keys, own_id=organisation.id
    )
    if "parent_id" in values:
        await _check_parent(session, values["parent_id"], organisation.id)
    changed = _apply(organisation, values)
    if changed:
        organisation.search_text = _search_text(organisation)
        organisation.updated_at = utcnow()
        await session.flush()
        audit.record(
            session,
            by,
            action="archive"
            if changed == ["status"] and organisation.status == "archived"
            else "update",
            entity_type="organisation",
            entity_id=organisation.id,
            detail={"fields": changed, "version": organisation.version},
        )
    return organisation


async def archive_organisation(
    session: AsyncSession, organisation_id: uuid.UUID, *, expected_version: int, by: Principal
) -> Organisation:
    organisation = await get_organisation(session, organisation_id)
    if not by.may_edit(organisation.id):
        raise Forbidden("You may archive only the organisations you are assigned to.")
    check_version(expected_version, organisation.version, "organisation")
    return await apply_organisation_changes(session, organisation, {"status": "archived"}, by=by)
