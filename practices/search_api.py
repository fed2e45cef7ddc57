"""`GET /api/v1/search`: this node's practices and study-visit reports in one search, with the
record-type facet (`type`: practice, study_visit). The practices' own search
(`/api/v1/practices/search`) keeps its answer as it was."""

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request

from node.core.auth import CurrentPrincipal
from node.core.deps import SessionDep
from node.core.errors import InvalidInput, Unauthorized, responses
from node.core.pagination import CountryParam
from practices.api import LanguageParam, Limit
from practices.search import service as search
from practices.search.analysis import reader_languages
from practices.search.port import SearchQuery
from practices.search.visits import RecordPage, RecordType, search_records
from practices.visit_index import LOCAL_VISITS
from practices.vocabulary import (
    EvaluationType,
    InterventionType,
    Licence,
    PracticeKind,
    ProcessFocus,
    Setting,
)
from registry.vocabulary import TargetGroup

router = APIRouter(prefix="/api/v1")


@router.get(
    "/search",
    response_model=RecordPage,
    tags=["search"],
    responses=responses(Unauthorized, InvalidInput),
)
async def search_records_route(
    request: Request,
    session: SessionDep,
    by: CurrentPrincipal,
    q: Annotated[
        str,
        Query(max_length=500, description="Words; the last one matches as a prefix."),
    ] = "",
    type: Annotated[  # the facet's name in the answer
        list[RecordType],
        Query(description="practice, study_visit (repeat it for both; none: both)."),
    ] = [],  # noqa: B006
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
) -> RecordPage:
    """Search published practices and study-visit reports (title, purpose, findings,
    recommendations, observations, observed practices; never participants) together. Each
    hit says its `type` and its page (`link`). Reports are found by signed-in readers only,
    as every study-visit route reads them; the facet `type` counts what this reader may find
    of each type (every other filter applied, not the type's own), and lists only the types
    they may find. Other filters as in `/api/v1/practices/search` (a practice's facet, such
    as `setting`, leaves out the reports, which have none)."""
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
    languages = reader_languages(request.headers.get("accept-language"))
    query = SearchQuery(
        text=q, filters=filters, sort=sort, limit=limit, cursor=cursor, languages=languages
    )
    found = await search_records(
        session, request.app.state.search, query, visits=LOCAL_VISITS, types=type, by=by
    )
    results = found.results
    return RecordPage(
        items=results.items,
        total=results.total,
        facets=results.facets,
        next_cursor=results.next_cursor,
        corrected=results.corrected,
    )
