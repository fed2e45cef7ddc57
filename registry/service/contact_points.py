"""Contact points: personal data, so every read is audited and an erasure leaves only the id."""

import uuid
from collections.abc import Sequence
from typing import Any

import phonenumbers
from sqlalchemy.ext.asyncio import AsyncSession

from node.core import audit
from node.core.auth import Principal
from node.core.db import utcnow
from node.core.errors import Forbidden, InvalidInput, NotFound, check_version
from node.core.schemas import given
from registry import repository
from registry.models import ContactPoint, Organisation
from registry.schemas import ContactPointCreate, ContactPointUpdate
from registry.service.organisations import get_organisation


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
