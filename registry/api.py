"""Routes of the registry under /api/v1: thin, the rules live in service.py."""

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import StringConstraints
from pydantic_core import to_json

from node.core import answers
from node.core.auth import CurrentPrincipal, CurrentUser
from node.core.deps import IfMatch, SessionDep, etag
from node.core.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    Unauthorized,
    responses,
)
from node.core.pagination import PRINTABLE, CountryParam, decode_keyset, encode_cursor
from node.core.schemas import Page, serialised
from node.core.settings import get_settings
from registry import repository, service
from registry.repository import OrganisationFilter
from registry.schemas import (
    ContactPointCreate,
    ContactPointRead,
    ContactPointUpdate,
    OrganisationCreate,
    OrganisationRead,
    OrganisationUpdate,
    ProtocolCreate,
    ProtocolRead,
    ProtocolUpdate,
)
from registry.vocabulary import (
    Area,
    Level,
    OrganisationKind,
    OrganisationStatus,
    ProtocolStatus,
    Sector,
    TargetGroup,
)

router = APIRouter(prefix="/api/v1", tags=["registry"])

WRITE_ERRORS = responses(
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    PreconditionFailed,
    PreconditionRequired,
    InvalidInput,
)
RegionParam = Annotated[str, StringConstraints(max_length=200, pattern=PRINTABLE)]
LanguageParam = Annotated[str, StringConstraints(pattern="^[A-Za-z]{2}$")]
Limit = Annotated[int, Query(ge=1, le=200, description="Page size.")]


def _limit(limit: int) -> int:
    return min(limit, get_settings().page_size_max)


# --- organisations ------------------------------------------------------------------------


@router.get(
    "/organisations",
    response_model=Page[OrganisationRead],
    response_model_exclude_unset=True,
    responses=responses(InvalidInput),
)
async def list_organisations(
    request: Request,
    session: SessionDep,
    kind: Annotated[list[OrganisationKind], Query()] = [],  # noqa: B006
    sector: Annotated[list[Sector], Query()] = [],  # noqa: B006
    level: Annotated[list[Level], Query()] = [],  # noqa: B006
    country: Annotated[list[CountryParam], Query()] = [],  # noqa: B006
    region: Annotated[list[RegionParam], Query()] = [],  # noqa: B006
    status: Annotated[list[OrganisationStatus], Query()] = [],  # noqa: B006
    area: Annotated[list[Area], Query()] = [],  # noqa: B006
    target_group: Annotated[list[TargetGroup], Query()] = [],  # noqa: B006
    language: Annotated[list[LanguageParam], Query()] = [],  # noqa: B006
    parent_id: uuid.UUID | None = None,
    q: Annotated[
        str | None,
        Query(
            max_length=200,
            pattern=PRINTABLE,
            description="Words in names, descriptions, services; case and accents ignored.",
        ),
    ] = None,
    cursor: str | None = None,
    limit: Limit = 50,
) -> Response:
    """Organisations in the registry. Filters combine with AND; repeat one to OR its values
    (`?kind=ngo&kind=probation&country=GR`). Archived ones are left out unless `status` asks."""
    filters = OrganisationFilter(
        kind=list(kind),
        sector=list(sector),
        level=list(level),
        country=[c.upper() for c in country],
        region=region,
        status=list(status),
        area=list(area),
        target_group=list(target_group),
        language=[code.lower() for code in language],
        parent_id=parent_id,
        q=q or None,
    )
    after = decode_keyset(cursor)
    size = _limit(limit)
    # The same page for every reader (no contact points in it): kept until the registry changes.
    kept: answers.Answers = request.app.state.answers
    number = await answers.counter(session, "registry")
    key = ("organisations", number, repr(filters), after, size)
    if number is not None and (answer := kept.get(key)) is not None:
        return answer
    rows = await repository.organisation_page_rows(session, filters, after=after, limit=size + 1)
    shown = rows[:size]
    identifiers, terms = await repository.organisation_children(session, [r.id for r in shown])
    last = rows[size - 1] if len(rows) > size else None
    page = {
        "items": [_listed(r, identifiers.get(r.id, []), terms.get(r.id, [])) for r in shown],
        "next_cursor": encode_cursor([last.name, str(last.id)]) if last else None,
    }
    # Serialised once, as the response model would give it (`tests/registry` holds the two
    # equal): the rows were validated when they were written, not again for every reader.
    answer = Response(to_json(page), media_type="application/json")
    return kept.put(key, answer) if number is not None else answer


def _listed(
    row: Any, identifiers: list[tuple[str, str]], terms: list[tuple[str, str]]
) -> dict[str, Any]:
    """One item of the organisation list: `OrganisationRead`'s fields in its order, with the
    values its validation would give the stored ones."""
    address = {k: getattr(row, f"address_{k}") for k in ADDRESS_PARTS}
    return {
        "ref": row.ref,
        "name": row.name,
        "local_names": [{"language": n["language"], "name": n["name"]} for n in row.local_names],
        "identifiers": [{"scheme": scheme, "value": value} for scheme, value in identifiers],
        "kind": row.kind,
        "sector": row.sector,
        "level": row.level,
        "country": row.country,
        "region": row.region,
        "parent_id": row.parent_id,
        "legal_basis": row.legal_basis,
        "description": row.description,
        "areas": [term for facet, term in terms if facet == "area"],
        "services": list(dict.fromkeys(row.services)),
        "target_groups": [term for facet, term in terms if facet == "target_group"],
        "languages": list(dict.fromkeys(row.languages)),
        "website": row.website,
        "address": address if any(address.values()) else None,
        "single_point_of_contact": row.single_point_of_contact,
        "status": row.status,
        "last_verified_date": row.last_verified_date,
        "id": row.id,
        "is_sample": row.is_sample,
        "version": row.version,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


ADDRESS_PARTS = ("street", "locality", "postal_code", "region")


@router.post(
    "/organisations",
    status_code=status.HTTP_201_CREATED,
    response_model=OrganisationRead,
    responses=WRITE_ERRORS,
)
async def create_organisation(
    data: OrganisationCreate, session: SessionDep, by: CurrentUser, response: Response
) -> OrganisationRead:
    """Add an organisation (administrators). A duplicate `ref` or identifier is a 409."""
    organisation = await service.create_organisation(session, data, by=by)
    response.headers["ETag"] = etag(organisation.version)
    response.headers["Location"] = f"/api/v1/organisations/{organisation.id}"
    return service.organisation_read(organisation)


@router.get(
    "/organisations/{organisation_id}",
    response_model=OrganisationRead,
    response_model_exclude_unset=True,
    responses=responses(NotFound, Unauthorized),
)
async def get_organisation(
    organisation_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    by: CurrentPrincipal,
    include: Annotated[
        list[Literal["contact_points"]],
        Query(description="`contact_points` embeds them (signed-in users only)."),
    ] = [],  # noqa: B006
) -> Response:
    with_contacts = "contact_points" in include
    if with_contacts and not by.is_signed_in:
        raise Unauthorized("Contact points are shown only to signed-in users.")
    # Without its contact points (personal data, and each read of one audited), an
    # organisation reads the same for everyone: kept until the registry changes.
    kept: answers.Answers = request.app.state.answers
    number = None if with_contacts else await answers.counter(session, "registry")
    key = ("organisation", number, organisation_id)
    if number is not None and (answer := kept.get(key)) is not None:
        return answer
    organisation = await service.get_organisation(session, organisation_id)
    contacts = None
    if with_contacts:
        contacts = await service.list_contact_points(
            session, organisation_id, include_archived=False, by=by
        )
    read = service.organisation_read(organisation, contact_points=contacts)
    headers = {"ETag": etag(organisation.version)}
    answer = serialised(read, OrganisationRead, exclude_unset=True, headers=headers)
    return kept.put(key, answer) if number is not None else answer


@router.patch(
    "/organisations/{organisation_id}", response_model=OrganisationRead, responses=WRITE_ERRORS
)
async def update_organisation(
    organisation_id: uuid.UUID,
    data: OrganisationUpdate,
    session: SessionDep,
    by: CurrentUser,
    version: IfMatch,
    response: Response,
) -> OrganisationRead:
    """Change the fields sent. `If-Match` must carry the ETag last read: a stale one is a 412."""
    organisation = await service.update_organisation(
        session, organisation_id, data, expected_version=version, by=by
    )
    response.headers["ETag"] = etag(organisation.version)
    return service.organisation_read(organisation)


@router.post(
    "/organisations/{organisation_id}/archive",
    response_model=OrganisationRead,
    responses=WRITE_ERRORS,
)
async def archive_organisation(
    organisation_id: uuid.UUID,
    session: SessionDep,
    by: CurrentUser,
    version: IfMatch,
    response: Response,
) -> OrganisationRead:
    """Archive: the record stays (protocols still name it) but leaves default listings."""
    organisation = await service.archive_organisation(
        session, organisation_id, expected_version=version, by=by
    )
    response.headers["ETag"] = etag(organisation.version)
    return service.organisation_read(organisation)


# --- contact points -----------------------------------------------------------------------


@router.get(
    "/organisations/{organisation_id}/contact-points",
    response_model=list[ContactPointRead],
    responses=responses(Unauthorized, NotFound),
    tags=["contact points"],
)
async def list_contact_points(
    organisation_id: uuid.UUID,
    session: SessionDep,
    by: CurrentUser,
    include_archived: bool = False,
) -> list[ContactPointRead]:
    """An organisation's contact points (signed-in users; each read is audited)."""
    contacts = await service.list_contact_points(
        session, organisation_id, include_archived=include_archived, by=by
    )
    return [ContactPointRead.model_validate(service.contact_point_dict(c)) for c in contacts]


@router.post(
    "/organisations/{organisation_id}/contact-points",
    status_code=status.HTTP_201_CREATED,
    response_model=ContactPointRead,
    responses=WRITE_ERRORS,
    tags=["contact points"],
)
async def create_contact_point(
    organisation_id: uuid.UUID,
    data: ContactPointCreate,
    session: SessionDep,
    by: CurrentUser,
    response: Response,
) -> ContactPointRead:
    """Phone numbers in national format are read in the organisation's country."""
    contact = await service.create_contact_point(session, organisation_id, data, by=by)
    response.headers["ETag"] = etag(contact.version)
    response.headers["Location"] = f"/api/v1/contact-points/{contact.id}"
    return ContactPointRead.model_validate(service.contact_point_dict(contact))


@router.get(
    "/contact-points/{contact_id}",
    response_model=ContactPointRead,
    responses=responses(Unauthorized, NotFound),
    tags=["contact points"],
)
async def get_contact_point(
    contact_id: uuid.UUID, session: SessionDep, by: CurrentUser, response: Response
) -> ContactPointRead:
    contact = await service.read_contact_point(session, contact_id, by=by)
    response.headers["ETag"] = etag(contact.version)
    return ContactPointRead.model_validate(service.contact_point_dict(contact))


@router.patch(
    "/contact-points/{contact_id}",
    response_model=ContactPointRead,
    responses=WRITE_ERRORS,
    tags=["contact points"],
)
async def update_contact_point(
    contact_id: uuid.UUID,
    data: ContactPointUpdate,
    session: SessionDep,
    by: CurrentUser,
    version: IfMatch,
    response: Response,
) -> ContactPointRead:
    """Set `status` to `archived` to retire a contact point and keep its history."""
    contact = await service.update_contact_point(
        session, contact_id, data, expected_version=version, by=by
    )
    response.headers["ETag"] = etag(contact.version)
    return ContactPointRead.model_validate(service.contact_point_dict(contact))


@router.delete(
    "/contact-points/{contact_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=WRITE_ERRORS,
    tags=["contact points"],
)
async def erase_contact_point(
    contact_id: uuid.UUID, session: SessionDep, by: CurrentUser, version: IfMatch
) -> Response:
    """Erase a contact point and its personal data for good (the audit log keeps only the id)."""
    await service.erase_contact_point(session, contact_id, expected_version=version, by=by)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- protocols ----------------------------------------------------------------------------


@router.get(
    "/protocols",
    response_model=Page[ProtocolRead],
    responses=responses(InvalidInput),
    tags=["protocols"],
)
async def list_protocols(
    session: SessionDep,
    country: Annotated[list[CountryParam], Query()] = [],  # noqa: B006
    status: Annotated[list[ProtocolStatus], Query()] = [],  # noqa: B006
    organisation_id: Annotated[
        uuid.UUID | None, Query(description="Protocols this organisation is a party to.")
    ] = None,
    q: Annotated[str | None, Query(max_length=200, pattern=PRINTABLE)] = None,
    cursor: str | None = None,
    limit: Limit = 50,
) -> Page[ProtocolRead]:
    after = decode_keyset(cursor)
    size = _limit(limit)
    rows = await repository.list_protocols(
        session,
        country=[c.upper() for c in country],
        status=list(status),
        organisation_id=organisation_id,
        q=q or None,
        after=after,
        limit=size + 1,
    )
    items = await service.protocol_reads(session, rows[:size])
    last = rows[size - 1] if len(rows) > size else None
    return Page(
        items=items, next_cursor=encode_cursor([last.title, str(last.id)]) if last else None
    )


@router.post(
    "/protocols",
    status_code=status.HTTP_201_CREATED,
    response_model=ProtocolRead,
    responses=WRITE_ERRORS,
    tags=["protocols"],
)
async def create_protocol(
    data: ProtocolCreate, session: SessionDep, by: CurrentUser, response: Response
) -> ProtocolRead:
    protocol = await service.create_protocol(session, data, by=by)
    response.headers["ETag"] = etag(protocol.version)
    response.headers["Location"] = f"/api/v1/protocols/{protocol.id}"
    return (await service.protocol_reads(session, [protocol]))[0]


@router.get(
    "/protocols/{protocol_id}",
    response_model=ProtocolRead,
    responses=responses(NotFound),
    tags=["protocols"],
)
async def get_protocol(
    protocol_id: uuid.UUID, session: SessionDep, response: Response
) -> ProtocolRead:
    protocol = await service.get_protocol(session, protocol_id)
    response.headers["ETag"] = etag(protocol.version)
    return (await service.protocol_reads(session, [protocol]))[0]


@router.patch(
    "/protocols/{protocol_id}",
    response_model=ProtocolRead,
    responses=WRITE_ERRORS,
    tags=["protocols"],
)
async def update_protocol(
    protocol_id: uuid.UUID,
    data: ProtocolUpdate,
    session: SessionDep,
    by: CurrentUser,
    version: IfMatch,
    response: Response,
) -> ProtocolRead:
    protocol = await service.update_protocol(
        session, protocol_id, data, expected_version=version, by=by
    )
    response.headers["ETag"] = etag(protocol.version)
    return (await service.protocol_reads(session, [protocol]))[0]


@router.post(
    "/protocols/{protocol_id}/archive",
    response_model=ProtocolRead,
    responses=WRITE_ERRORS,
    tags=["protocols"],
)
async def archive_protocol(
    protocol_id: uuid.UUID,
    session: SessionDep,
    by: CurrentUser,
    version: IfMatch,
    response: Response,
) -> ProtocolRead:
    protocol = await service.archive_protocol(session, protocol_id, expected_version=version, by=by)
    response.headers["ETag"] = etag(protocol.version)
    return (await service.protocol_reads(session, [protocol]))[0]
