"""Routes of needs (signed-in users; the grouped view for administrators). The composition
root mounts them under /api/v1 (`node.api`)."""

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from node.core import audit
from node.core.auth import AdminUser, CurrentUser
from node.core.deps import SessionDep
from node.core.errors import Forbidden, InvalidInput, NotFound, Unauthorized, responses
from node.core.pagination import decode_keyset, encode_cursor
from node.core.schemas import Page
from practices.needs import service
from practices.needs.schemas import NeedCreate, NeedRead, NeedSummary, NeedUpdate
from practices.needs.vocabulary import NeedKind, NeedStatus
from practices.vocabulary import InterventionType, Setting
from registry.vocabulary import Area, TargetGroup

router = APIRouter(tags=["needs"])
WRITE_ERRORS = responses(Unauthorized, Forbidden, NotFound, InvalidInput)
Limit = Annotated[int, Query(ge=1, le=200)]


@router.get(
    "/needs",
    response_model=Page[NeedRead],
    responses=responses(Unauthorized, InvalidInput),
)
async def list_needs(
    session: SessionDep,
    by: CurrentUser,
    kind: Annotated[list[NeedKind], Query()] = [],  # noqa: B006
    status: Annotated[list[NeedStatus], Query()] = [],  # noqa: B006
    organisation_id: uuid.UUID | None = None,
    target_group: Annotated[list[TargetGroup], Query()] = [],  # noqa: B006
    setting: Annotated[list[Setting], Query()] = [],  # noqa: B006
    area: Annotated[list[Area], Query()] = [],  # noqa: B006
    intervention_type: Annotated[list[InterventionType], Query()] = [],  # noqa: B006
    cursor: str | None = None,
    limit: Limit = 50,
) -> Page[NeedRead]:
    """Needs, newest first: those of your organisations (administrators: every one). Each
    filter given keeps the needs that match it (terms: the needs tagged with all of them)."""
    after = decode_keyset(cursor)
    if after is not None:
        try:
            datetime.fromisoformat(after[0])
        except ValueError:
            raise InvalidInput("cursor", "not a cursor this server issued") from None
    terms = {
        "target_group": [str(t) for t in target_group],
        "setting": [str(t) for t in setting],
        "area": [str(t) for t in area],
        "intervention_type": [str(t) for t in intervention_type],
    }
    rows = await service.list_needs(
        session,
        by=by,
        organisation_id=organisation_id,
        kinds=[str(k) for k in kind],
        statuses=[str(s) for s in status],
        terms=terms,
        after=after,
        limit=limit + 1,
    )
    shown = rows[:limit]
    audit.record_reads(session, by, "need", (n.id for n in shown))
    last = rows[limit - 1] if len(rows) > limit else None
    return Page(
        items=await service.need_reads(session, shown),
        next_cursor=encode_cursor([last.created_at.isoformat(), str(last.id)]) if last else None,
    )


@router.post(
    "/needs",
    status_code=status.HTTP_201_CREATED,
    response_model=NeedRead,
    responses=WRITE_ERRORS,
)
async def create_need(
    data: NeedCreate, session: SessionDep, by: CurrentUser, response: Response
) -> NeedRead:
    """Record a need for one of your organisations (administrators: for any organisation)."""
    need = await service.create_need(session, data, by=by)
    response.headers["Location"] = f"/api/v1/needs/{need.id}"
    [read] = await service.need_reads(session, [need])
    return read


@router.get(
    "/needs/summary",
    response_model=NeedSummary,
    responses=responses(Unauthorized, Forbidden),
)
async def needs_summary(
    session: SessionDep,
    _admin: AdminUser,
    status: Annotated[list[NeedStatus], Query()] = [],  # noqa: B006
) -> NeedSummary:
    """The National Point's view (administrators): counts by kind, and by kind,
    organisation and term (target group, setting, area, intervention type). No text."""
    return await service.summary(session, [str(s) for s in status])


@router.get(
    "/needs/{need_id}",
    response_model=NeedRead,
    responses=responses(Unauthorized, NotFound),
)
async def get_need(need_id: uuid.UUID, session: SessionDep, by: CurrentUser) -> NeedRead:
    need = await service.get_need(session, need_id, by=by)
    audit.record_reads(session, by, "need", [need.id])
    [read] = await service.need_reads(session, [need])
    return read


@router.patch("/needs/{need_id}", response_model=NeedRead, responses=WRITE_ERRORS)
async def update_need(
    need_id: uuid.UUID, data: NeedUpdate, session: SessionDep, by: CurrentUser
) -> NeedRead:
    """Change a need of your organisations: mark it addressed (with a note), correct it."""
    need = await service.update_need(session, need_id, data, by=by)
    [read] = await service.need_reads(session, [need])
    return read
