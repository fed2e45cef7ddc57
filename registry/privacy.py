"""The registry's personal data, for data-subject requests and retention: contact points (the
people and functions of each organisation), and whatever free text of organisations and
cooperation protocols names a person.

A contact point whose name, e-mail address or phone number is the person's is the person's: it
is listed whole and erased whole. A mention elsewhere (a contact point's hours, an
organisation's description, a protocol's rules) is replaced by `REMOVED`. Synchronous (run
through `AsyncSession.run_sync`); never commits.
"""

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session, selectinload

from node.core.privacy import Erased, Matcher, Place, Retention, scrub_fields, text_places
from registry.models import ContactPoint, Organisation, Protocol, ProtocolParty
from registry.service.organisations import _search_text
from registry.service.protocols import _protocol_search_text

CONTACT_TEXT = ("title", "department", "hours")
ORGANISATION_TEXT = (
    "name",
    "local_names",
    "region",
    "legal_basis",
    "description",
    "services",
    "website",
    "address_street",
    "address_locality",
    "address_region",
)
PROTOCOL_TEXT = (
    "title",
    "purpose",
    "principles",
    "information_sharing_rules",
    "reporting_procedure",
    "meeting_frequency",
    "document_url",
)
# What the registry holds of a person (the record of processing reads it).
PERSONAL_DATA = {
    "contact_point": (
        "name",
        "title",
        "department",
        "email",
        "phones",
        "languages",
        "hours",
        "last_verified_date",
    ),
}


def _is_the_person(matcher: Matcher, contact: ContactPoint) -> tuple[str, ...]:
    """The words that make a contact point the person's (empty: it is not)."""
    found = [
        text[a:b]
        for text in (contact.name or "", contact.email or "")
        for a, b in matcher.spans(text)
    ]
    found += [
        str(phone.get("number"))
        for phone in contact.phones or []
        if isinstance(phone, dict) and matcher.is_phone(str(phone.get("number", "")))
    ]
    return tuple(found)


def _contact(contact: ContactPoint, organisation: str) -> dict[str, Any]:
    return {
        "organisation": organisation,
        "name": contact.name,
        "title": contact.title,
        "department": contact.department,
        "email": contact.email,
        "phones": contact.phones,
        "languages": contact.languages,
        "hours": contact.hours,
        "available_24_7": contact.available_24_7,
        "is_primary": contact.is_primary,
        "last_verified_date": _iso(contact.last_verified_date),
        "status": contact.status,
        "created_at": contact.created_at.isoformat(),
    }


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _contacts(session: Session) -> list[tuple[ContactPoint, str]]:
    rows = session.execute(
        select(ContactPoint, Organisation.name)
        .join(Organisation, Organisation.id == ContactPoint.organisation_id)
        .order_by(ContactPoint.created_at)
    )
    return [(contact, name) for contact, name in rows]


def person_contact_ids(session: Session, matcher: Matcher) -> set[str]:
    """The ids of the contact points that are the person (audit entries about them are about
    the person)."""
    return {str(c.id) for c, _ in _contacts(session) if _is_the_person(matcher, c)}


def find(session: Session, matcher: Matcher) -> list[Place]:
    """Every place of the registry the person appears."""
    places: list[Place] = []
    for contact, organisation_name in _contacts(session):
        found = _is_the_person(matcher, contact)
        if found:
            value = _contact(contact, organisation_name)
            places.append(Place("contact_point", str(contact.id), "(contact point)", value, found))
        else:
            fields = {name: getattr(contact, name) for name in CONTACT_TEXT}
            places += text_places(matcher, "contact_point", contact.id, fields)
    for organisation in session.scalars(select(Organisation).order_by(Organisation.name)):
        fields = {name: getattr(organisation, name) for name in ORGANISATION_TEXT}
        places += text_places(matcher, "organisation", organisation.id, fields)
    for protocol in session.scalars(select(Protocol).order_by(Protocol.title)):
        fields = {name: getattr(protocol, name) for name in PROTOCOL_TEXT}
        places += text_places(matcher, "protocol", protocol.id, fields)
    for party in session.scalars(select(ProtocolParty)):
        fields = {"responsibilities": party.responsibilities}
        places += text_places(matcher, "protocol_party", party.protocol_id, fields)
    return places


def erase(session: Session, matcher: Matcher) -> Erased:
    """Delete the person's contact points; replace every mention elsewhere by `REMOVED`
    (organisations and protocols get a new version, and their folded search text again)."""
    erased = Erased()
    for contact, _ in _contacts(session):
        if _is_the_person(matcher, contact):
            session.delete(contact)
            erased.add("contact_point")
        elif scrub_fields(matcher, contact, CONTACT_TEXT):
            erased.add("contact_point.text")
    organisations = select(Organisation).options(selectinload(Organisation.identifiers))
    for organisation in session.scalars(organisations):
        if scrub_fields(matcher, organisation, ORGANISATION_TEXT):
            organisation.search_text = _search_text(organisation)
            erased.add("organisation.text")
    for protocol in session.scalars(select(Protocol)):
        if scrub_fields(matcher, protocol, PROTOCOL_TEXT):
            protocol.search_text = _protocol_search_text(protocol)
            erased.add("protocol.text")
    for party in session.scalars(select(ProtocolParty)):
        if scrub_fields(matcher, party, ["responsibilities"]):
            erased.add("protocol_party.text")
    session.flush()
    return erased


def retain(session: Session, *, now: datetime, period: timedelta, dry_run: bool) -> Retention:
    """Contact points not verified for `period` (never verified: not changed for it) are
    removed; a period of 0 keeps them for ever. With `dry_run`, only counted."""
    if not period:
        return Retention("contact_point", period, 0)
    cut = now - period
    stale = or_(
        ContactPoint.last_verified_date < cut.date(),
        ContactPoint.last_verified_date.is_(None) & (ContactPoint.updated_at < cut),
    )
    if dry_run:
        count = session.scalar(select(func.count()).select_from(ContactPoint).where(stale))
        return Retention("contact_point", period, int(count or 0))
    result = session.execute(
        delete(ContactPoint).where(stale).execution_options(synchronize_session=False)
    )
    return Retention("contact_point", period, int(getattr(result, "rowcount", 0) or 0))
