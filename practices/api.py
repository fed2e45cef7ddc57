"""Routes of the practice database under /api/v1 (study-visit reports have their own, in
`practices.study_visits.api`)."""

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import StringConstraints
from sqlalchemy.ext.asyncio import AsyncSession

from node.core import answers
from node.core.auth import CurrentPrincipal, CurrentUser
from node.core.deps import IfMatch, SessionDep, SettingsDep, etag
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
from node.core.settings import Settings
from practices import repository, service
from practices.models import Practice
from practices.schemas import (
    GateFinding,
    PracticeCreate,
    PracticePublished,
    PracticeRead,
    PracticeUpdate,
    Publication,
    ScopeChange,
    SearchPage,
    Withdrawal,
)
from practices.search import service as search
from practices.search.analysis import reader_languages
from practices.search.port import SearchQuery
from practices.vocabulary import (
    EvaluationType,
    InterventionType,
    Licence,
    PracticeKind,
    PracticeStatus,
    ProcessFocus,
    Setting,
)
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
    by: CurrentPrincipal,
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
) -> Response:
    """Search published practices. Filters: AND across facets, OR within one (repeat it).
    Facet counts for a facet apply every filter but that facet's own. Records the
    personal-data gate holds are found by signed-in users only (marked `held`)."""
    filters = search.facet_filters(
        country=country,
        kind=kind,
        intervention_type=intervention_type,
        setting=setting,
        target_group=target_group,
        process_focus=process_focus,
        evaluation_type=evaluation_type,
        language=language,
        licence=licence,
    )
    # the query's words are analysed in the reader's languages first (Accept-Language)
    languages = reader_languages(request.headers.get("accept-language"))
    query = SearchQuery(
        text=q, filters=filters, sort=sort, limit=limit, cursor=cursor, languages=languages
    )
    # The same answer for every reader alike (signed in or not): kept until the practices or
    # the index change.
    kept: answers.Answers = request.app.state.answers
    generation = await search.generation(session, request.app.state.search)
    key = ("practices/search", generation, by.is_signed_in, search.query_key(query))
    if generation is not None and (answer := kept.get(key)) is not None:
        return answer
    results = await search.search(session, request.app.state.search, search.LOCAL, query, by=by)
    page = SearchPage.model_construct(
        items=results.items,
        total=results.total,
        facets=results.facets,
        next_cursor=results.next_cursor,
        corrected=results.corrected,
    )
    response = serialised(page, SearchPage)
    return kept.put(key, response) if generation is not None else response


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
    """All records by title. Anonymous visitors see published ones only, and none the
    personal-data gate holds; signed-in users see every status (filter with `status`), held
    records marked `held`."""
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
        after=decode_keyset(cursor),
        limit=limit + 1,
        with_held=by.is_signed_in,
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
    practice_id: uuid.UUID, request: Request, session: SessionDep, by: CurrentPrincipal
) -> Response:
    # What anonymous readers see of a practice (published, public, not held) is the same for
    # all of them: kept until a published practice or the registry (the names of its
    # organisations) changes.
    kept: answers.Answers = request.app.state.answers
    numbers = None if by.is_signed_in else await answers.counters(session, "practices", "registry")
    key = ("practice", numbers, practice_id)
    if numbers is not None and (answer := kept.get(key)) is not None:
        return answer
    practice = await service.get_practice(session, practice_id, by=by)
    read = (await service.practice_reads(session, [practice]))[0]
    answer = serialised(read, PracticeRead, headers={"ETag": etag(practice.version)})
    return kept.put(key, answer) if numbers is not None else answer


@router.patch(
    "/practices/{practice_id}",
    response_model=PracticePublished,
    tags=["practices"],
    responses=WRITE_ERRORS,
)
async def update_practice(
    practice_id: uuid.UUID,
    data: PracticeUpdate,
    session: SessionDep,
    settings: SettingsDep,
    by: CurrentUser,
    version: IfMatch,
    response: Response,
    redact_previous: Annotated[
        bool,
        Query(
            description="The earlier versions leaked personal data: the federation purges"
            " their bodies at the hub and every mirror (a signed redaction)."
        ),
    ] = False,
) -> PracticePublished:
    """Editing a published practice makes a new version of it, searchable at once; the answer
    says what the personal-data gate holds of it (`hold`). With `redact_previous`, the bodies
    of its earlier versions are purged wherever they travelled."""
    practice = await service.update_practice(
        session, practice_id, data, expected_version=version, by=by, redact_previous=redact_previous
    )
    response.headers["ETag"] = etag(practice.version)
    return await _with_hold(session, settings, practice, published=practice.version != version)


async def _with_hold(
    session: AsyncSession, settings: Settings, practice: Practice, *, published: bool
) -> PracticePublished:
    """The practice as read, with what the gate holds of the version just `published`."""
    hold: list[GateFinding] = []
    if published and practice.status == "published":
        [hold] = await service.gate_verdicts(session, settings, [("practice", practice)])
    read = (await service.practice_reads(session, [practice]))[0]
    return PracticePublished.model_validate(read.model_dump() | {"hold": hold})


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
    response_model=PracticePublished,
    tags=["practices"],
    responses=WRITE_ERRORS,
)
async def publish_practice(
    practice_id: uuid.UUID,
    session: SessionDep,
    settings: SettingsDep,
    by: CurrentUser,
    version: IfMatch,
    response: Response,
    data: Publication | None = None,
) -> PracticePublished:
    """Publish (administrators): visible to everyone and searchable. On a node that
    federates, send `{"confirm_no_person": true}`: your word that the free text names no
    person the node cannot know (without it: 422, nothing changes). The answer says what the
    personal-data gate holds from the federation's feed (`hold`: field, words, detector)."""
    practice = await service.transition_practice(
        session,
        practice_id,
        "publish",
        expected_version=version,
        by=by,
        settings=settings,
        confirmed=data is not None and data.confirm_no_person,
    )
    response.headers["ETag"] = etag(practice.version)
    return await _with_hold(session, settings, practice, published=True)


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
    """Withdraw a published practice (administrators), with the reason; it leaves search.
    With `reason_code: personal_data` its free text is erased here and the federation purges
    every earlier body of it at the hub and every mirror (a signed redaction)."""
    practice = await service.transition_practice(
        session,
        practice_id,
        "withdraw",
        expected_version=version,
        by=by,
        reason=data.reason,
        personal_data=data.reason_code == "personal_data",
    )
    response.headers["ETag"] = etag(practice.version)
    return (await service.practice_reads(session, [practice]))[0]


@router.post(
    "/practices/{practice_id}/scope",
    response_model=PracticeRead,
    tags=["practices"],
    responses=WRITE_ERRORS,
)
async def change_practice_scope(
    practice_id: uuid.UUID,
    data: ScopeChange,
    session: SessionDep,
    by: CurrentUser,
    version: IfMatch,
    response: Response,
) -> PracticeRead:
    """Set who may see a practice (the National Point's administrators), audited with the
    old and the new scope. A published practice gets a new version and the federation
    follows at the hub's and the mirrors' next pull: narrowed to `network`, the record is
    shown to signed-in readers only; to `national`, a signed tombstone withdraws it."""
    practice = await service.change_practice_scope(
        session, practice_id, data.scope, by=by, expected_version=version, reason=data.reason
    )
    response.headers["ETag"] = etag(practice.version)
    return (await service.practice_reads(session, [practice]))[0]


__all__ = ["PRINTABLE", "router"]
