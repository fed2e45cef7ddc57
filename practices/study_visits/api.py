"""Routes of study-visit reports under /api/v1 (signed-in users only)."""

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from node.core import audit
from node.core.auth import CurrentUser, Principal
from node.core.deps import IfMatch, SessionDep, SettingsDep, etag
from node.core.errors import InvalidInput, NotFound, Unauthorized, responses
from node.core.pagination import CountryParam, decode_keyset, encode_cursor
from node.core.schemas import Page
from node.core.settings import Settings
from practices.api import WRITE_ERRORS, Limit
from practices.schemas import GateFinding, ScopeChange
from practices.search import visits as visit_search
from practices.service import gate_verdicts
from practices.study_visits import recommendations, repository, service
from practices.study_visits.models import StudyVisit
from practices.study_visits.schemas import (
    NoticeRead,
    RecommendationRead,
    ReviewComment,
    StatusChange,
    StudyVisitCreate,
    StudyVisitPublished,
    StudyVisitRead,
    StudyVisitUpdate,
    Transition,
    VisitWithdrawal,
)
from practices.vocabulary import RecommendationStatus, ReportStatus

router = APIRouter(prefix="/api/v1")
VISIT_Q = (
    "Words to look for in published reports (title, purpose, findings, recommendations, "
    "observations, observed practices; never participants), in any word form; best first, "
    "paged by the search's own cursor."
)


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
    q: Annotated[str, Query(max_length=500, description=VISIT_Q)] = "",
    searching: Annotated[visit_search.Searcher | None, Depends(visit_search.searcher)] = None,
) -> Page[StudyVisitRead]:
    """Published reports, and your own drafts (administrators see all). Signed-in users only."""
    if q.strip() and searching is not None:  # the search index's order, its own cursor
        if status and ReportStatus.published not in status:
            return Page(items=[], next_cursor=None)
        ids, following = await visit_search.matching_visits(
            session,
            searching.index,
            q,
            host_country=host_country,
            languages=searching.languages,
            cursor=cursor,
            limit=limit,
        )
        found = [v for i in ids if (v := await repository.get_study_visit(session, i))]
        audit.record_reads(session, by, "study_visit", (v.id for v in found))
        items = [await service.study_visit_read(session, v, by=by) for v in found]
        return Page(items=items, next_cursor=following)
    rows = await repository.list_study_visits(
        session,
        status=[str(s) for s in status],
        host_country=[c.upper() for c in host_country],
        visible_to=None if by.is_admin else by.user_id,
        after=decode_keyset(cursor),
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
    response_model=StudyVisitPublished,
    tags=["study visits"],
    responses=WRITE_ERRORS,
)
async def update_study_visit(
    visit_id: uuid.UUID,
    data: StudyVisitUpdate,
    session: SessionDep,
    settings: SettingsDep,
    by: CurrentUser,
    version: IfMatch,
    response: Response,
) -> StudyVisitPublished:
    """Editing a published report makes a new version of it; the answer says what the
    personal-data gate holds of it (`hold`)."""
    visit = await service.update_study_visit(
        session, visit_id, data, expected_version=version, by=by
    )
    response.headers["ETag"] = etag(visit.version)
    return await _with_hold(session, settings, visit, by, published=visit.version != version)


async def _with_hold(
    session: AsyncSession, settings: Settings, visit: StudyVisit, by: Principal, *, published: bool
) -> StudyVisitPublished:
    """The report as read, with what the gate holds of the version just `published`."""
    hold: list[GateFinding] = []
    if published and visit.status == "published":
        [hold] = await gate_verdicts(session, settings, [("study_visit", visit)])
    read = await service.study_visit_read(session, visit, by=by)
    return StudyVisitPublished.model_validate(read.model_dump() | {"hold": hold})


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
    "/study-visits/{visit_id}/scope",
    response_model=StudyVisitRead,
    tags=["study visits"],
    responses=WRITE_ERRORS,
)
async def change_study_visit_scope(
    visit_id: uuid.UUID,
    data: ScopeChange,
    session: SessionDep,
    by: CurrentUser,
    version: IfMatch,
    response: Response,
) -> StudyVisitRead:
    """Set who may see a report (the National Point's administrators), audited with the old
    and the new scope; the federation follows at the next pull (see the practices' route)."""
    visit = await service.change_study_visit_scope(
        session, visit_id, data.scope, by=by, expected_version=version, reason=data.reason
    )
    response.headers["ETag"] = etag(visit.version)
    return await service.study_visit_read(session, visit, by=by)


@router.post(
    "/study-visits/{visit_id}/withdraw",
    response_model=StudyVisitRead,
    tags=["study visits"],
    responses=WRITE_ERRORS,
)
async def withdraw_study_visit(
    visit_id: uuid.UUID,
    data: VisitWithdrawal,
    session: SessionDep,
    by: CurrentUser,
    version: IfMatch,
    response: Response,
) -> StudyVisitRead:
    """Withdraw a published report (administrators), with the reason shown with it; the
    federation sends a signed tombstone to the hub and every mirror."""
    visit = await service.withdraw_study_visit(
        session,
        visit_id,
        data.reason,
        expected_version=version,
        by=by,
        personal_data=data.reason_code == "personal_data",
    )
    response.headers["ETag"] = etag(visit.version)
    return await service.study_visit_read(session, visit, by=by)


class FollowUp(BaseModel):
    """A report's recommendations and the mails that told their addressees."""

    recommendations: list[RecommendationRead]
    notices: list[NoticeRead]


@router.get(
    "/study-visits/{visit_id}/recommendations",
    response_model=FollowUp,
    tags=["recommendations"],
    responses=responses(Unauthorized, NotFound),
)
async def report_recommendations(
    visit_id: uuid.UUID, session: SessionDep, by: CurrentUser
) -> FollowUp:
    """A report's recommendations, each with its addressees and what became of it, and
    whether each addressee was told by mail (`notices`: National Point and author only)."""
    visit = await service.get_study_visit(session, visit_id, by=by, audited=False)
    told = by.is_admin or (by.user_id is not None and visit.author_id == by.user_id)
    return FollowUp(
        recommendations=await recommendations.reads_of(session, visit),
        notices=await recommendations.notices_of(session, visit.id) if told else [],
    )


@router.get(
    "/recommendations",
    response_model=list[RecommendationRead],
    tags=["recommendations"],
    responses=responses(Unauthorized, InvalidInput),
)
async def list_recommendations(
    session: SessionDep,
    by: CurrentUser,
    addressee: Annotated[
        str | None, Query(description="An organisation's id, or `EU` (the EU level).")
    ] = None,
    status: Annotated[list[RecommendationStatus], Query()] = [],  # noqa: B006
    open: Annotated[bool, Query(description="Only those not yet implemented or declined.")] = False,
) -> list[RecommendationRead]:
    """The recommendations of published reports (administrators: of every report), of one
    addressee, in these statuses."""
    return await recommendations.find_recommendations(
        session, by=by, addressee=addressee, status=[str(s) for s in status], open_only=open
    )


@router.post(
    "/recommendations/{recommendation_id}/status",
    response_model=RecommendationRead,
    tags=["recommendations"],
    responses=WRITE_ERRORS,
)
async def change_recommendation_status(
    recommendation_id: uuid.UUID, data: StatusChange, session: SessionDep, by: CurrentUser
) -> RecommendationRead:
    """Record what became of a recommendation, with the day and a note (the editors of an
    organisation it is addressed to, or the National Point); audited. The report gets a new
    version, and the status travels with it to the hub."""
    item, visit = await recommendations.change_status(session, recommendation_id, data, by=by)
    [read] = [r for r in await recommendations.reads_of(session, visit) if r.id == item.id]
    return read


@router.post(
    "/study-visits/{visit_id}/{action}",
    response_model=StudyVisitPublished,
    tags=["study visits"],
    responses=WRITE_ERRORS,
)
async def transition_study_visit(
    visit_id: uuid.UUID,
    action: Literal["submit", "request-changes", "publish"],
    session: SessionDep,
    settings: SettingsDep,
    by: CurrentUser,
    version: IfMatch,
    response: Response,
    data: Transition | None = None,
) -> StudyVisitPublished:
    """`submit` (author), `request-changes` (National Point, with a comment), `publish`
    (National Point: then transmitted to the bodies it is addressed to). On a node that
    federates, a publish needs `{"confirm_no_person": true}` (without it: 422, nothing
    changes), and its answer says what the personal-data gate holds from the federation's
    feed (`hold`: field, words, detector)."""
    visit = await service.transition_study_visit(
        session,
        visit_id,
        action,
        expected_version=version,
        by=by,
        comment=data.comment if data else None,
        settings=settings,
        confirmed=data is not None and data.confirm_no_person,
    )
    response.headers["ETag"] = etag(visit.version)
    return await _with_hold(session, settings, visit, by, published=action == "publish")
