"""The registry's rules: who may change what, what must hold before a change is stored."""

import uuid
from collections.abc import Sequence
from typing import Any

import phonenumbers
from sqlalchemy.ext.asyncio import AsyncSession

from node.core import audit
from node.core.auth import Principal
from node.core.db import sync_collection, utcnow
from node.core.errors import Conflict, Forbidden, InvalidInput, NotFound, check_version
from node.core.text import fold
from registry import repository
from registry.models import (
    ContactPoint,
    Organisation,
    OrganisationIdentifier,
    OrganisationTerm,
    Protocol,
    ProtocolParty,
)
from registry.schemas import (
    ContactPointCreate,
    ContactPointUpdate,
    OrganisationCreate,
    OrganisationRead,
    OrganisationUpdate,
    PartyIn,
    PartyRead,
    ProtocolCreate,
    ProtocolRead,
    ProtocolUpdate,
    given,
)

TERM_FACETS = {"areas": "area", "target_groups": "target_group"}
ADDRESS_COLUMNS = ("street", "locality", "postal_code", "region")


# --- organisations ------------------------------------------------------------------------


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
    from registry.schemas import ContactPointRead

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


# --- contact points -----------------------------------------------------------------------


def normalise_phones(
    phones: list[dict[str, Any]], country: str, field: str
) -> list[dict[str, Any]]:
    """E.164 numbers; national formats are read in the organisation's country."""
    out = []
    for index, phone in enumerate(phones):
        where = f"{field}.{index}.number"
        try:
            parsed = phonenumbers.parse(phone["number"], country)
        except phonenumbers.NumberParseException:
            raise InvalidInput(where, "not a phone number") from None
        if not phonenumbers.is_valid_number(parsed):
            raise InvalidInput(
                where, f"not a valid number in {country} or in international (+...) format"
            )
        e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        out.append(phone | {"number": e164})
    return out


async def _editable_organisation(
    session: AsyncSession, organisation_id: uuid.UUID, by: Principal
) -> Organisation:
    organisation = await get_organisation(session, organisation_id)
    if not by.may_edit(organisation.id):
        raise Forbidden("You may change contact points only of organisations you are assigned to.")
    return organisation


async def create_contact_point(
    session: AsyncSession,
    organisation_id: uuid.UUID,
    data: ContactPointCreate,
    *,
    by: Principal,
    is_sample: bool = False,
) -> ContactPoint:
    organisation = await _editable_organisation(session, organisation_id, by)
    values = data.model_dump(mode="python")
    values["phones"] = normalise_phones(values["phones"], organisation.country, "phones")
    _check_reachable(values)
    contact = ContactPoint(organisation_id=organisation.id, is_sample=is_sample, **values)
    session.add(contact)
    await session.flush()
    audit.record(
        session,
        by,
        action="create",
        entity_type="contact_point",
        entity_id=contact.id,
        detail={"organisation_id": str(organisation.id)},
    )
    return contact


async def read_contact_point(
    session: AsyncSession, contact_id: uuid.UUID, *, by: Principal
) -> ContactPoint:
    contact = await repository.get_contact_point(session, contact_id)
    if contact is None:
        raise NotFound(f"No contact point with id {contact_id}.")
    audit.record(session, by, action="read", entity_type="contact_point", entity_id=contact.id)
    return contact


async def list_contact_points(
    session: AsyncSession, organisation_id: uuid.UUID, *, include_archived: bool, by: Principal
) -> Sequence[ContactPoint]:
    await get_organisation(session, organisation_id)
    contacts = await repository.list_contact_points(
        session, organisation_id, include_archived=include_archived
    )
    audit.record_reads(session, by, "contact_point", (c.id for c in contacts))
    return contacts


async def update_contact_point(
    session: AsyncSession,
    contact_id: uuid.UUID,
    data: ContactPointUpdate,
    *,
    expected_version: int,
    by: Principal,
) -> ContactPoint:
    contact = await repository.get_contact_point(session, contact_id)
    if contact is None:
        raise NotFound(f"No contact point with id {contact_id}.")
    organisation = await _editable_organisation(session, contact.organisation_id, by)
    check_version(expected_version, contact.version, "contact point")
    values = given(data)
    if "phones" in values:
        values["phones"] = normalise_phones(values["phones"] or [], organisation.country, "phones")
    _check_reachable(
        {k: getattr(contact, k) for k in ("name", "title", "email", "phones")} | values
    )
    changed = [k for k, v in values.items() if getattr(contact, k) != v]
    for name in changed:
        setattr(contact, name, values[name])
    if changed:
        contact.updated_at = utcnow()
        await session.flush()
        # Field names only: the audit log must not become a second copy of personal data.
        audit.record(
            session,
            by,
            action="update",
            entity_type="contact_point",
            entity_id=contact.id,
            detail={"fields": changed, "version": contact.version},
        )
    else:  # nothing changed, but the answer shows the contact point: that is a read
        audit.record(session, by, action="read", entity_type="contact_point", entity_id=contact.id)
    return contact


def _check_reachable(values: dict[str, Any]) -> None:
    if not values.get("name") and not values.get("title"):
        raise InvalidInput("title", "a contact point needs a name or a function (title)")
    if not values.get("email") and not values.get("phones"):
        raise InvalidInput("email", "a contact point needs an e-mail address or a phone number")


async def erase_contact_point(
    session: AsyncSession, contact_id: uuid.UUID, *, expected_version: int, by: Principal
) -> None:
    contact = await repository.get_contact_point(session, contact_id)
    if contact is None:
        raise NotFound(f"No contact point with id {contact_id}.")
    await _editable_organisation(session, contact.organisation_id, by)
    check_version(expected_version, contact.version, "contact point")
    await session.delete(contact)
    await session.flush()
    audit.record(
        session,
        by,
        action="erase",
        entity_type="contact_point",
        entity_id=contact_id,
        detail={"organisation_id": str(contact.organisation_id)},
    )


# --- protocols ----------------------------------------------------------------------------


async def get_protocol(session: AsyncSession, protocol_id: uuid.UUID) -> Protocol:
    protocol = await repository.get_protocol(session, protocol_id)
    if protocol is None:
        raise NotFound(f"No protocol with id {protocol_id}.")
    return protocol


async def protocol_reads(
    session: AsyncSession, protocols: Sequence[Protocol]
) -> list[ProtocolRead]:
    names = await repository.organisation_names(
        session, {p.organisation_id for pr in protocols for p in pr.parties}
    )
    out = []
    for protocol in protocols:
        values = {
            name: getattr(protocol, name) for name in ProtocolRead.model_fields if name != "parties"
        }
        values["parties"] = [
            PartyRead(
                organisation_id=p.organisation_id,
                organisation_name=names.get(p.organisation_id, ""),
                role=p.role,
                responsibilities=p.responsibilities,
            )
            for p in protocol.parties
        ]
        out.append(ProtocolRead.model_validate(values))
    return out


def _may_edit_protocol(by: Principal, party_ids: list[uuid.UUID]) -> bool:
    return by.is_admin or any(by.may_edit(org_id) for org_id in party_ids)


async def _check_parties(session: AsyncSession, parties: list[PartyIn]) -> None:
    seen: set[uuid.UUID] = set()
    for index, party in enumerate(parties):
        if party.organisation_id in seen:
            raise InvalidInput(f"parties.{index}.organisation_id", "this party is listed twice")
        seen.add(party.organisation_id)
        if not await repository.organisation_exists(session, party.organisation_id):
            raise InvalidInput(
                f"parties.{index}.organisation_id",
                f"no organisation with id {party.organisation_id}",
            )


def _protocol_search_text(protocol: Protocol) -> str:
    parts = [protocol.title, protocol.ref or "", protocol.purpose or "", protocol.principles or ""]
    return fold(" \n".join(parts))


def _set_parties(protocol: Protocol, parties: list[PartyIn]) -> None:
    wanted = {p.organisation_id: (index, p) for index, p in enumerate(parties)}
    sync_collection(
        protocol.parties,
        list(wanted),
        key=lambda p: p.organisation_id,
        make=lambda org_id: ProtocolParty(organisation_id=org_id, role="party"),
    )
    for party in protocol.parties:
        index, given = wanted[party.organisation_id]
        party.role = str(given.role)
        party.responsibilities = given.responsibilities
        party.position = index


async def create_protocol(
    session: AsyncSession, data: ProtocolCreate, *, by: Principal, is_sample: bool = False
) -> Protocol:
    if not _may_edit_protocol(by, [p.organisation_id for p in data.parties]):
        raise Forbidden("You may record protocols only where an organisation of yours is a party.")
    if data.ref is not None and await repository.ref_taken(session, Protocol, data.ref):
        raise Conflict(f"The ref '{data.ref}' is already used by another protocol.")
    await _check_parties(session, data.parties)
    _check_merged_dates(None, {"signed_date": data.signed_date, "review_date": data.review_date})
    values = data.model_dump(mode="python", exclude={"parties"})
    values["document_url"] = str(data.document_url) if data.document_url else None
    protocol = Protocol(is_sample=is_sample, **values)
    _set_parties(protocol, data.parties)
    protocol.search_text = _protocol_search_text(protocol)
    session.add(protocol)
    await session.flush()
    audit.record(session, by, action="create", entity_type="protocol", entity_id=protocol.id)
    return protocol


async def update_protocol(
    session: AsyncSession,
    protocol_id: uuid.UUID,
    data: ProtocolUpdate,
    *,
    expected_version: int,
    by: Principal,
) -> Protocol:
    protocol = await get_protocol(session, protocol_id)
    current = [p.organisation_id for p in protocol.parties]
    if not _may_edit_protocol(by, current):
        raise Forbidden("You may edit protocols only where an organisation of yours is a party.")
    check_version(expected_version, protocol.version, "protocol")
    new_parties = [p.organisation_id for p in data.parties or []]
    if new_parties and not _may_edit_protocol(by, new_parties):
        raise Forbidden("The parties must still include an organisation you are assigned to.")
    return await apply_protocol_changes(session, protocol, data, by=by)


async def apply_protocol_changes(
    session: AsyncSession, protocol: Protocol, data: ProtocolUpdate, *, by: Principal
) -> Protocol:
    values = given(data, exclude={"parties"})
    if "document_url" in values:
        values["document_url"] = str(data.document_url) if data.document_url else None
    if data.ref is not None:
        holder = await repository.ref_taken(session, Protocol, data.ref)
        if holder is not None and holder != protocol.id:
            raise Conflict(f"The ref '{data.ref}' is already used by another protocol.")
    _check_merged_dates(protocol, values)
    changed = [k for k, v in values.items() if getattr(protocol, k) != v]
    for name in changed:
        setattr(protocol, name, values[name])
    if data.parties is not None and _parties_differ(protocol, data.parties):
        await _check_parties(session, data.parties)
        _set_parties(protocol, data.parties)
        changed.append("parties")
    if changed:
        protocol.search_text = _protocol_search_text(protocol)
        protocol.updated_at = utcnow()
        await session.flush()
        audit.record(
            session,
            by,
            action="update",
            entity_type="protocol",
            entity_id=protocol.id,
            detail={"fields": changed, "version": protocol.version},
        )
    return protocol


def _check_merged_dates(protocol: Protocol | None, values: dict[str, Any]) -> None:
    signed = values.get("signed_date", protocol.signed_date if protocol else None)
    review = values.get("review_date", protocol.review_date if protocol else None)
    if signed is not None and review is not None and review < signed:
        raise InvalidInput("review_date", "review_date cannot be before signed_date")


def _parties_differ(protocol: Protocol, parties: list[PartyIn]) -> bool:
    old = [(p.organisation_id, p.role, p.responsibilities) for p in protocol.parties]
    new = [(p.organisation_id, str(p.role), p.responsibilities) for p in parties]
    return old != new


async def archive_protocol(
    session: AsyncSession, protocol_id: uuid.UUID, *, expected_version: int, by: Principal
) -> Protocol:
    return await update_protocol(
        session,
        protocol_id,
        ProtocolUpdate(status="archived"),
        expected_version=expected_version,
        by=by,
    )
