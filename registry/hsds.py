"""The registry as Open Referral HSDS 3 `organization` objects, for tools that speak HSDS."""

from typing import Any

from registry import service
from registry.models import ContactPoint, Organisation
from registry.schemas import OrganisationRead


def export_hsds(organisations: list[Organisation], *, with_contacts: bool) -> list[dict[str, Any]]:
    """Organisations shaped as Open Referral HSDS 3 `organization` objects.

    Fields HSDS has no place for travel in `x_integra`.
    """
    out = []
    for organisation in organisations:
        read = OrganisationRead.model_validate(service.organisation_read(organisation))
        record: dict[str, Any] = {
            "id": str(organisation.id),
            "name": organisation.name,
            "alternate_name": "; ".join(n["name"] for n in organisation.local_names) or None,
            "description": organisation.description,
            "website": organisation.website,
            "legal_status": organisation.legal_basis,
            "parent_organization_id": str(organisation.parent_id)
            if organisation.parent_id
            else None,
            "organization_identifiers": [
                {
                    "id": f"{organisation.id}-{i}",
                    "identifier_scheme": ident.scheme,
                    "identifier_type": ident.scheme,
                    "identifier": ident.value,
                }
                for i, ident in enumerate(organisation.identifiers)
            ],
            "locations": _hsds_locations(organisation),
            "x_integra": read.model_dump(
                mode="json",
                include={
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
                },
            ),
        }
        if with_contacts:
            record["contacts"] = [_hsds_contact(c) for c in organisation.contact_points]
        out.append(record)
    return out


def _hsds_locations(organisation: Organisation) -> list[dict[str, Any]]:
    if not (organisation.address_locality or organisation.address_street):
        return []
    return [
        {
            "id": f"{organisation.id}-location",
            "location_type": "physical",
            "addresses": [
                {
                    "id": f"{organisation.id}-address",
                    "address_type": "physical",
                    "address_1": organisation.address_street or "",
                    "city": organisation.address_locality or "",
                    "state_province": organisation.address_region or organisation.region or "",
                    "postal_code": organisation.address_postal_code or "",
                    "country": organisation.country,
                }
            ],
        }
    ]


def _hsds_contact(contact: ContactPoint) -> dict[str, Any]:
    return {
        "id": str(contact.id),
        "name": contact.name,
        "title": contact.title,
        "department": contact.department,
        "email": contact.email,
        "phones": [
            {
                "id": f"{contact.id}-{i}",
                "number": p["number"],
                "extension": p.get("extension"),
                "type": p.get("type"),
                "description": p.get("description"),
                "languages": [{"code": code} for code in contact.languages],
            }
            for i, p in enumerate(contact.phones)
        ],
    }
