"""The registry as Open Referral HSDS 3 `organization` objects, for tools that speak HSDS.

The export is one page of the HSDS API's `GET /organizations` answer (`total_items`, …,
`contents`), every organisation fully nested as `schema/compiled/organization.json` describes
it, checked in the tests against the official schemas (tests/registry/hsds_schema/). An
optional field with no value is left out, never written as null. Every object has a UUID id:
the record's own for organisations and contacts, and for the objects HSDS has and the registry
keeps inside a record (identifiers, location, address, phones, languages) a UUID derived from
the record's id and the object's place in it, so the same registry exports the same ids.
"""

import uuid
from typing import Any

from registry import service
from registry.models import ContactPoint, Organisation
from registry.schemas import OrganisationRead

# HSDS names the kind of phone service (voice, cell, fax, text…); the registry names its use.
_PHONE_TYPE = {"landline": "voice", "mobile": "cell", "helpline": "voice", "fax": "fax"}
_X_INTEGRA = {
    "ref",
    "kind",
    "sector",
    "level",
    "country",
    "region",
    "areas",
    "services",
    "target_groups",
    "languages",
    "single_point_of_contact",
    "status",
    "last_verified_date",
}


def export_hsds(organisations: list[Organisation], *, with_contacts: bool) -> dict[str, Any]:
    """Organisations as one page of HSDS 3 `organization` objects. Fields HSDS has no place
    for travel in `x_integra`."""
    contents = [_organization(o, with_contacts=with_contacts) for o in organisations]
    return {
        "total_items": len(contents),
        "total_pages": 1,
        "page_number": 1,
        "size": len(contents),
        "first_page": True,
        "last_page": True,
        "empty": not contents,
        "contents": contents,
    }


def _organization(organisation: Organisation, *, with_contacts: bool) -> dict[str, Any]:
    read = OrganisationRead.model_validate(service.organisation_read(organisation))
    record: dict[str, Any] = {
        "id": str(organisation.id),
        "name": organisation.name,
        "alternate_name": "; ".join(n["name"] for n in organisation.local_names) or None,
        "description": organisation.description or "",  # required by HSDS
        "website": organisation.website,
        "legal_status": organisation.legal_basis,
        "parent_organization_id": str(organisation.parent_id) if organisation.parent_id else None,
        "organization_identifiers": [
            {
                "id": _derived(organisation.id, f"identifier/{ident.scheme}/{ident.value}"),
                "organization_id": str(organisation.id),
                "identifier_scheme": ident.scheme,
                "identifier_type": ident.scheme,
                "identifier": ident.value,
            }
            for ident in organisation.identifiers
        ],
        "locations": _locations(organisation),
        "x_integra": read.model_dump(mode="json", include=_X_INTEGRA, exclude_none=True),
    }
    if with_contacts:
        record["contacts"] = [_contact(c) for c in organisation.contact_points]
    return _present(record)


def _locations(organisation: Organisation) -> list[dict[str, Any]]:
    if not (organisation.address_locality or organisation.address_street):
        return []
    location_id = _derived(organisation.id, "location")
    address = {
        "id": _derived(organisation.id, "address"),
        "location_id": location_id,
        "address_type": "physical",
        # HSDS requires these five, empty when the registry does not know them.
        "address_1": organisation.address_street or "",
        "city": organisation.address_locality or "",
        "state_province": organisation.address_region or organisation.region or "",
        "postal_code": organisation.address_postal_code or "",
        "country": organisation.country,
    }
    location = {
        "id": location_id,
        "organization_id": str(organisation.id),
        "location_type": "physical",
        "addresses": [address],
    }
    return [location]


def _contact(contact: ContactPoint) -> dict[str, Any]:
    return _present(
        {
            "id": str(contact.id),
            "organization_id": str(contact.organisation_id),
            "name": contact.name,
            "title": contact.title,
            "department": contact.department,
            "email": contact.email,
            "phones": [_phone(contact, i, p) for i, p in enumerate(contact.phones)],
        }
    )


def _phone(contact: ContactPoint, index: int, phone: dict[str, Any]) -> dict[str, Any]:
    phone_id = _derived(contact.id, f"phone/{index}")
    extension = phone.get("extension")
    description = phone.get("description")
    if phone.get("type") == "helpline":
        description = "; ".join(filter(None, ["helpline", description]))
    if extension and not str(extension).isdigit():
        # HSDS's extension is a number: any other extension is said in the description.
        description = "; ".join(filter(None, [description, f"extension {extension}"]))
        extension = None
    return _present(
        {
            "id": phone_id,
            "contact_id": str(contact.id),
            "number": phone["number"],
            "extension": int(extension) if extension else None,
            "type": _PHONE_TYPE.get(str(phone.get("type")), None),
            "description": description,
            "languages": [
                {
                    "id": _derived(uuid.UUID(phone_id), f"language/{code}"),
                    "phone_id": phone_id,
                    "code": code,
                }
                for code in contact.languages
            ],
        }
    )


def _derived(record_id: uuid.UUID, place: str) -> str:
    """A stable UUID for an object kept inside a record: the same record, the same id."""
    return str(uuid.uuid5(record_id, place))


def _present(fields: dict[str, Any]) -> dict[str, Any]:
    """The fields that have a value: HSDS's optional fields are left out, not null."""
    return {k: v for k, v in fields.items() if v is not None}
