"""Routes of the practice database and study-visit reports under /api/v1."""

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import StringConstraints

from node.core import audit
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
from node.core.pagination import encode_cursor
from practices import repository, service
from practices.schemas import (
    FacetValue,
    PracticeCreate,
    PracticeRead,
    PracticeUpdate,
    ReviewComment,
    SearchHit,
    SearchPage,
    StudyVisitCreate,
    StudyVisitRead,
    StudyVisitUpdate,
    Withdrawal,
)
from practices.search.port import SearchQuery
from practices.search.text import query_terms, snippet
from practices.vocabulary import (
    EvaluationType,
    InterventionType,
    Licence,
    PracticeKind,
    PracticeStatus,
    ProcessFocus,
    ReportStatus,
    Setting,
)
from registry.api import PRINTABLE, CountryParam, _after
from registry.schemas import Page
from registry.vocabulary import TargetGroup

router = APIRouter(prefix="/api/v1")
WRITE_ERRORS = responses(
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    PreconditionFailed,
    PreconditionRequired,
    InvalidInput,
)
LanguageParam = Annotated[str, StringConstraints(pattern="^[A-Za-z]{2}$")]
Limit = Annotated[int, Query(ge=1, le=100)]


# --- search -------------------------------------------------------------------------------


@router.get(
    "/practices/search",
    response_model=SearchPage,
    tags=["search"],
    responses=responses(InvalidInput),
)
async def search_practices(
    request: Request,
    session: SessionDep,
    q: Annotated[
        str,
        Query(
            max_length=500,
            description="Words; the last one matches as a "
            "prefix. Case, accents and UK/US spelling are ignored.",
        ),
    ] = "",
    country: Annotated[list[CountryParam], Query()] = [],  # noqa: B006
    kind: Annotated[list[PracticeKind], Query()] = [],  # noqa: B006
    intervention_type: Annotated[list[InterventionType], Query()] = [],  # noqa: B006
    setting: Annotated[list[Setting], Query()] = [],  # noqa: B006
    target_group: Annotated[list[TargetGroup], Query()] = [],  # noqa: B006
    process_focus: Annotated[list[ProcessFocus], Query()] = [],  # noqa: B006
    evaluation_type: Annotated[list[EvaluationType], Query()] = [],  # noqa: B006
    language: Annotated[list[LanguageParam], Query()] = [],  # noqa: B006
    licence: Annotated[list[Licence], Query()] = [],  # noqa: B006
    sort: Literal["relevance", "date"] = "relevance",
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Limit = 20,
) -> SearchPage:
    """Search published practices. Filters: AND across facets, OR within one (repeat it).
    Facet counts for a facet apply every filter but that facet's own."""
    raw: dict[
        str,
        list[str]
        | list[PracticeKind]
        | list[InterventionType]
        | list[Setting]
        | list[TargetGroup]
        | list[ProcessFocus]
        | list[EvaluationType]
        | list[Licence],
    ] = {
        "country": [c.upper() for c in country],
        "kind": kind,
        "intervention_type": intervention_type,
        "setting": setting,
        "target_group": target_group,
        "process_focus": process_focus,
        "evaluation_type": evaluation_type,
        "language": [x.lower() for x in language],
        "licence": licence,
    }
    filters = {k: frozenset(str(v) for v in vals) for k, vals in raw.items() if vals}
    filters["source"] = frozenset({"local"})  # this node's own practices, not a mirrored pool
    query = SearchQuery(text=q, filters=filters, sort=sort, limit=limit, cursor=cursor)
    result = await request.app.state.search.search(session, query)
    found = await repository.practices_by_ids(session, result.record_ids, published_only=True)
    terms = query_terms(q)
    items = [
        SearchHit(
            id=p.id,
            kind=PracticeKind(p.kind),
            title=p.title,
            original_title=p.original_title,
            country=p.country,
            language=p.language,
            summary=p.summary,
            snippet=snippet(f"{p.summary} {p.description or ''}", terms),
            published_at=p.published_at,
        )
        for p in (found.get(i) for i in result.record_ids)
        if p is not None
    ]
    facets = {
        facet: [FacetValue(value=v, count=n) for v, n in counts.items()]
        for facet, counts in result.facets.items()
    }
    return SearchPage(
        items=items, total=result.total, facets=facets, next_cursor=result.next_cursor
    )


# --- practices ----------------------------------------------------------------------------


@router.get(
    "/practices",
    response_model=Page[PracticeRead],
    tags=["practices"],
    responses=responses(InvalidInput),
)
async def list_practices(
    session: SessionDep,
    by: CurrentPrincipal,
    status: Annotated[list[PracticeStatus], Query()] = [],  # noqa: B006
    kind: Annotated[list[PracticeKind], Query()] = [],  # noqa: B006
    country: Annotated[list[CountryParam], Query()] = [],  # noqa: B006
    cursor: str | None = None,
    limit: Limit = 50,
) -> Page[PracticeRead]:
    """All records by title. Anonymous visitors see published ones only; signed-in users see
    every status (filter with `status`)."""
    statuses = [str(s) for s in status]
    if not by.is_signed_in:
        statuses = [s for s in statuses if s == "published"] or ["published"]
        if status and "published" not in status:
            statuses = ["__none__"]
    rows = await repository.list_practices(
        session,
        status=statuses,
        kind=[str(k) for k in kind],
        country=[c.upper() for c in country],
        after=_after(cursor),
        limit=limit + 1,
    )
    items = await service.practice_reads(session, rows[:limit])
    last = rows[limit - 1] if len(rows) > limit else None
    return Page(
        items=items, next_cursor=encode_cursor([last.title, str(last.id)]) if last else None
    )


@router.post(
    "/practices",
    status_code=status.HTTP_201_CREATED,
    response_model=PracticeRead,
    responses=WRITE_ERRORS,
    tags=["practices"],
)
async def create_practice(
    data: PracticeCreate, session: SessionDep, by: CurrentUser, response: Response
) -> PracticeRead:
    """Record a practice as a draft. Editors name one of their organisations."""
    practice = await service.create_practice(session, data, by=by)
    response.headers["ETag"] = etag(practice.version)
    response.headers["Location"] = f"/api/v1/practices/{practice.id}"
    return (await service.practice_reads(session, [practice]))[0]


@router.get(
    "/practices/{practice_id}",
    response_model=PracticeRead,
    tags=["practices"],
    responses=responses(NotFound),
)
async def get_practice(
    practice_id: uuid.UUID, session: SessionDep, by: CurrentPrincipal, response: Response
) -> PracticeRead:
    practice = await service.get_practice(session, practice_id, by=by)
    response.headers["ETag"] = etag(practice.version)
    return (await service.practice_reads(session, [practice]))[0]


@router.patch(
    "/practices/{practice_id}",
    response_model=PracticeRead,
    tags=["practices"],
    responses=WRITE_ERRORS,
)
async def update_practice(
    practice_id: uuid.UUID,
    data: PracticeUpdate,
    session: SessionDep,
    by: CurrentUser,
    version: IfMatch,
    response: Response,
) -> PracticeRead:
    """Editing a published practice makes a new version of it, searchable at once."""
    practice = await service.update_practice(
        session, practice_id, data, expected_version=version, by=by
    )
    response.headers["ETag"] = etag(practice.version)
    return (await service.practice_reads(session, [practice]))[0]


async def _transition(
    practice_id: uuid.UUID,
    action: str,
    session: SessionDep,
    by: CurrentUser,
    version: int,
    response: Response,
    reason: str | None = None,
) -> PracticeRead:
    practice = await service.transition_practice(
        session, practice_id, action, expected_version=version, by=by, reason=reason
    )
    response.headers["ETag"] = etag(practice.version)
    return (await service.practice_reads(session, [practice]))[0]


@router.post(
    "/practices/{practice_id}/submit",
    response_model=PracticeRead,
    tags=["practices"],
    responses=WRITE_ERRORS,
)
async def submit_practice(
    practice_id: uuid.UUID,
    session: SessionDep,
    by: CurrentUser,
    version: IfMatch,
    response: Response,
) -> PracticeRead:
    """Draft → in review, for the National Point to publish."""
    return await _transition(practice_id, "submit", session, by, version, response)


@router.post(
    "/practices/{practice_id}/publish",
    response_model=PracticeRead,
    tags=["practices"],
    responses=WRITE_ERRORS,
)
async def publish_practice(
    practice_id: uuid.UUID,
    session: SessionDep,
    by: CurrentUser,
    version: IfMatch,
    response: Response,
) -> PracticeRead:
    """Publish (administrators): visible to everyone and searchable."""
    return await _transition(practice_id, "publish", session, by, version, response)


@router.post(
    "/practices/{practice_id}/withdraw",
    response_model=PracticeRead,
    tags=["practices"],
    responses=WRITE_ERRORS,
)
async def withdraw_practice(
    practice_id: uuid.UUID,
    data: Withdrawal,
    session: SessionDep,
    by: CurrentUser,
    version: IfMatch,
    response: Response,
) -> PracticeRead:
    """Withdraw a published practice (administrators), with the reason; it leaves search."""
    return await _transition(practice_id, "withdraw", session, by, version, response, data.reason)


# --- study-visit reports ------------------------------------------------------------------


@router.get(
    "/study-visits",
    response_model=Page[StudyVisitRead],
    tags=["study visits"],
    responses=responses(Unauthorized, InvalidInput),
)
async def list_study_visits(
    session: SessionDep,
    by: CurrentUser,
    status: Annotated[list[ReportStatus], Query()] = [],  # noqa: B006
    host_country: Annotated[list[CountryParam], Query()] = [],  # noqa: B006
    cursor: str | None = None,
    limit: Limit = 50,
) -> Page[StudyVisitRead]:
    """Published reports, and your own drafts (administrators see all). Signed-in users only."""
    rows = await repository.list_study_visits(
        session,
        status=[str(s) for s in status],
        host_country=[c.upper() for c in host_country],
        visible_to=None if by.is_admin else by.user_id,
        after=_after(cursor),
        limit=limit + 1,
    )
    audit.record_reads(session, by, "study_visit", (v.id for v in rows[:limit]))
    items = [await service.study_visit_read(session, v, by=by) for v in rows[:limit]]
    last = rows[limit - 1] if len(rows) > limit else None
    return Page(
        items=items, next_cursor=encode_cursor([last.title, str(last.id)]) if last else None
    )


@router.post(
    "/study-visits",
    status_code=status.HTTP_201_CREATED,
    response_model=StudyVisitRead,
    tags=["study visits"],
    responses=WRITE_ERRORS,
)
async def create_study_visit(
    data: StudyVisitCreate, session: SessionDep, by: CurrentUser, response: Response
) -> StudyVisitRead:
    """Start a report (as a draft); you are its author."""
    visit = await service.create_study_visit(session, data, by=by)
    response.headers["ETag"] = etag(visit.version)
    response.headers["Location"] = f"/api/v1/study-visits/{visit.id}"
    return await service.study_visit_read(session, visit, by=by)


@router.get(
    "/study-visits/{visit_id}",
    response_model=StudyVisitRead,
    tags=["study visits"],
    responses=responses(Unauthorized, NotFound),
)
async def get_study_visit(
    visit_id: uuid.UUID, session: SessionDep, by: CurrentUser, response: Response
) -> StudyVisitRead:
    visit = await service.get_study_visit(session, visit_id, by=by)
    response.headers["ETag"] = etag(visit.version)
    return await service.study_visit_read(session, visit, by=by)


@router.patch(
    "/study-visits/{visit_id}",
    response_model=StudyVisitRead,
    tags=["study visits"],
    responses=WRITE_ERRORS,
)
async def update_study_visit(
    visit_id: uuid.UUID,
    data: StudyVisitUpdate,
    session: SessionDep,
    by: CurrentUser,
    version: IfMatch,
    response: Response,
) -> StudyVisitRead:
    visit = await service.update_study_visit(
        session, visit_id, data, expected_version=version, by=by
    )
    response.headers["ETag"] = etag(visit.version)
    return await service.study_visit_read(session, visit, by=by)


@router.post(
    "/study-visits/{visit_id}/comments",
    response_model=StudyVisitRead,
    tags=["study visits"],
    responses=WRITE_ERRORS,
)
async def comment_study_visit(
    visit_id: uuid.UUID, data: ReviewComment, session: SessionDep, by: CurrentUser
) -> StudyVisitRead:
    visit = await service.comment_study_visit(session, visit_id, data.comment, by=by)
    return await service.study_visit_read(session, visit, by=by)


@router.post(
    "/study-visits/{visit_id}/{action}",
    response_model=StudyVisitRead,
    tags=["study visits"],
    responses=WRITE_ERRORS,
)
async def transition_study_visit(
    visit_id: uuid.UUID,
    action: Literal["submit", "request-changes", "publish"],
    session: SessionDep,
    by: CurrentUser,
    version: IfMatch,
    response: Response,
    data: ReviewComment | None = None,
) -> StudyVisitRead:
    """`submit` (author), `request-changes` (National Point, with a comment), `publish`
    (National Point: then transmitted to the bodies it is addressed to)."""
    visit = await service.transition_study_visit(
        session,
        visit_id,
        action,
        expected_version=version,
        by=by,
        comment=data.comment if data else None,
    )
    response.headers["ETag"] = etag(visit.version)
    return await service.study_visit_read(session, visit, by=by)


__all__ = ["PRINTABLE", "router"]
