"""Record pages: a practice with everything it says, and the organisations that run them.

The pages call the same services as the API: a practice the reader may not see does not exist
for them; contact points are shown to signed-in users only, and each read is audited.
"""

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

import registry
from node.core.deps import SessionDep
from node.core.errors import NotFound
from node.web.deps import WebPrincipal
from node.web.render import page
from practices import service as practices
from registry import service as organisations
from registry.repository import OrganisationFilter, list_organisations, list_protocols
from registry.schemas import ContactPointRead

router = APIRouter()
CHILDREN_SHOWN = 200


def _id(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(f"No {what} with id {value[:60]}.") from None


@router.get("/practices/{practice_id}", response_class=HTMLResponse)
async def practice_page(
    practice_id: str, request: Request, session: SessionDep, by: WebPrincipal
) -> HTMLResponse:
    practice = await practices.get_practice(session, _id(practice_id, "practice"), by=by)
    read = (await practices.practice_reads(session, [practice]))[0]
    return page(request, "practices/practice.html", {"p": read})


@router.get("/organisations/{organisation_id}", response_class=HTMLResponse)
async def organisation_page(
    organisation_id: str, request: Request, session: SessionDep, by: WebPrincipal
) -> HTMLResponse:
    found = await organisations.get_organisation(session, _id(organisation_id, "organisation"))
    organisation = organisations.organisation_read(found)
    parent = None
    if organisation.parent_id is not None:
        names = await registry.organisation_names(session, {organisation.parent_id})
        parent = (organisation.parent_id, names.get(organisation.parent_id, ""))
    children = await list_organisations(
        session, OrganisationFilter(parent_id=organisation.id), after=None, limit=CHILDREN_SHOWN
    )
    contacts: list[ContactPointRead] | None = None
    if by.is_signed_in:
        rows = await organisations.list_contact_points(
            session, organisation.id, include_archived=False, by=by
        )
        contacts = [
            ContactPointRead.model_validate(organisations.contact_point_dict(c)) for c in rows
        ]
    protocols = await list_protocols(
        session,
        country=[],
        status=[],
        organisation_id=organisation.id,
        q=None,
        after=None,
        limit=CHILDREN_SHOWN,
    )
    context = {
        "o": organisation,
        "protocols": await organisations.protocol_reads(session, protocols),
        "parent": parent,
        "children": [(c.id, c.name) for c in children],
        "contacts": contacts,
    }
    return page(request, "registry/organisation.html", context)
