"""Study-visit reports in the search, beside the practices, with a record-type facet (issue 16).

A published report is one more document of the practices' own index (whatever its adapter:
SQL full text or Meilisearch), so its text is analysed exactly as a practice's (each text's
word forms in its language, concepts across languages, typo correction): its title, purpose,
observations, findings, recommendations (the report's text and its recommendation items),
transferability, and the titles of the practices it observed. Never its participants: their
names are not in the document, and a word of a participant's name is taken out of the free
text before it is analysed.

A report is told apart by its source (`SOURCE`; `PUBLIC_SOURCE` too when its scope is
`public`), so that a search of practices (source `local`) never sees it, and by its kind
(`study_visit`, as the EU pool files a pooled report). The record type is therefore a view of
the kind facet: `study_visit`, or any practice kind for `practice`; its counts are the kind
facet's (disjunctive: every filter applies but the kind's and the type's own).

Who finds a report is who may read it: on a node every study-visit route needs a signed-in
reader (`practices.study_visits.api`), so an anonymous search looks in the practices only; at
the hub, the pool's own rule (`federation.pool.pool_source`: `network` records for signed-in
readers only) applies to pooled reports as to pooled practices.
"""

import re
import uuid
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any, Literal, Protocol

from fastapi import Request
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from node.core.auth import Principal
from node.core.text import fold
from practices import repository
from practices.schemas import FacetValue, SearchHit
from practices.search.analysis import reader_languages, snippet_terms
from practices.search.port import IndexDocument, SearchBackend, SearchQuery
from practices.search.service import LOCAL, Results, Source
from practices.search.text import QueryTerms
from practices.vocabulary import PracticeKind

SOURCE = "local-visit"  # every published report of this node
PUBLIC_SOURCE = "local-visit-public"  # those of scope `public` too
RecordType = Literal["practice", "study_visit"]
STUDY_VISIT: Literal["study_visit"] = "study_visit"  # its kind, as the EU pool files one
PRACTICE: Literal["practice"] = "practice"
TYPES: tuple[RecordType, ...] = ("practice", "study_visit")
TYPE_FACET = "type"
PRACTICE_KINDS = frozenset(k.value for k in PracticeKind)
# A word of a participant's name this long or longer is left out of the indexed text.
NAME_WORD = 3
WORD = re.compile(r"\w+")


class Report(Protocol):
    """What the index reads of a study-visit report (a `StudyVisit` row)."""

    id: uuid.UUID
    title: str
    language: str
    host_country: str
    start_date: date
    scope: str
    purpose: str
    observations: str | None
    findings: str | None
    recommendations: str | None
    transferability: str | None
    participant_names: list[Any]


def _without_names(names: Iterable[Any]) -> Callable[[str], str]:
    """A text with every word of these names left out (compared folded: `Παπαδοπούλου`,
    `PAPADOPOULOU` and `papadopoulou` alike)."""
    words = {
        fold(w)
        for name in names
        if isinstance(name, str)
        for w in WORD.findall(name)
        if len(w) >= NAME_WORD
    }
    if not words:
        return lambda text: text
    return lambda text: WORD.sub(lambda m: " " if fold(m[0]) in words else m[0], text)


def visit_document(
    visit: Report,
    *,
    recommendations: Sequence[str] = (),
    observed: Sequence[tuple[str, str]] = (),
) -> IndexDocument:
    """What the search sees of a published report: ``recommendations`` the texts of its
    recommendation items, ``observed`` the practices it observed as (language, title)."""
    scrub = _without_names(visit.participant_names or [])
    own = [
        visit.purpose,
        visit.observations or "",
        visit.findings or "",
        visit.recommendations or "",
        *recommendations,
        visit.transferability or "",
    ]
    body = scrub(" \n".join(t for t in own if t))
    title = scrub(visit.title)
    titles = [t for _, t in observed]
    return IndexDocument(
        record_id=visit.id,
        title=visit.title,
        title_text=title,
        body_text=" \n".join([body, *titles]),
        sort_date=visit.start_date,
        texts=(
            (visit.language, title, body),
            *((language, "", observed_title) for language, observed_title in observed),
        ),
        facets={
            "country": [visit.host_country] if visit.host_country else [],
            "kind": [STUDY_VISIT],
            "language": [visit.language],
            "source": [SOURCE, PUBLIC_SOURCE] if visit.scope == "public" else [SOURCE],
        },
    )


# --- the record type ---------------------------------------------------------------------------


def kinds_of(types: Collection[str], kinds: Collection[str] = ()) -> frozenset[str] | None:
    """The kind filter that says these record types (and these kinds, if any are chosen):
    None when neither filters, an empty set when nothing can match (a kind of practice asked
    of study-visit reports only)."""
    wanted: set[str] | None = None
    if types:
        wanted = set()
        if PRACTICE in types:
            wanted |= PRACTICE_KINDS
        if STUDY_VISIT in types:
            wanted.add(STUDY_VISIT)
    if kinds:
        wanted = set(kinds) if wanted is None else wanted & set(kinds)
    return None if wanted is None else frozenset(wanted)


def with_types(
    filters: dict[str, frozenset[str]], types: Collection[str]
) -> dict[str, frozenset[str]] | None:
    """The filters with the record types as a kind filter; None when nothing can match."""
    kinds = kinds_of(types, filters.get("kind", frozenset()))
    if kinds is None:
        return filters
    if not kinds:
        return None
    return filters | {"kind": kinds}


def type_facet(facets: dict[str, list[FacetValue]], *, readable: Collection[str] = TYPES) -> None:
    """Add the record-type facet to a result's facets, from the kind facet's counts (a
    report's kind is `study_visit`, any other is a practice's), and take `study_visit` out
    of the kind facet. ``readable``: the types this reader may find (each listed, with 0)."""
    kinds = facets.get("kind", [])
    visits = sum(v.count for v in kinds if v.value == STUDY_VISIT)
    practices = sum(v.count for v in kinds if v.value != STUDY_VISIT)
    counts = {PRACTICE: practices, STUDY_VISIT: visits}
    facets["kind"] = [v for v in kinds if v.value != STUDY_VISIT]
    facets[TYPE_FACET] = [FacetValue(value=t, count=counts[t]) for t in TYPES if t in readable]


# --- what a hit is -----------------------------------------------------------------------------


class RecordHit(BaseModel):
    """A practice or a study-visit report found, with its page (`link`)."""

    type: RecordType
    id: uuid.UUID
    title: str
    kind: str = Field(description="A practice's kind; `study_visit` for a report.")
    country: str | None = Field(description="A practice's country; a report's host country.")
    language: str
    summary: str = Field(description="A practice's summary; a report's purpose.")
    snippet: str = Field(
        description="HTML: the matching words wrapped in <mark>, the rest escaped."
    )
    published_at: datetime | None
    start_date: date | None = Field(None, description="A report's first day.")
    held: bool = False
    link: str = Field(description="The record's page in the web interface.")


class RecordPage(BaseModel):
    items: list[RecordHit]
    total: int
    facets: dict[str, list[FacetValue]] = Field(
        description="Counts per facet value, as the practices' search gives them, and `type`: "
        "the record types (practice, study_visit) the reader may find."
    )
    next_cursor: str | None
    corrected: str | None = None


def practice_hit(hit: SearchHit) -> RecordHit:
    return RecordHit.model_construct(
        type=PRACTICE,
        id=hit.id,
        title=hit.title,
        kind=str(hit.kind),
        country=hit.country,
        language=hit.language,
        summary=hit.summary,
        snippet=hit.snippet,
        published_at=hit.published_at,
        start_date=None,
        held=hit.held,
        link=f"/practices/{hit.id}",
    )


class Practices:
    """This node's practices as record hits."""

    name = LOCAL.name

    async def hits(
        self, session: AsyncSession, record_ids: list[uuid.UUID], terms: QueryTerms
    ) -> dict[uuid.UUID, RecordHit]:
        found = await LOCAL.hits(session, record_ids, terms)
        return {i: practice_hit(h) for i, h in found.items()}


PRACTICES = Practices()


# --- searching ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Searched:
    results: Results[RecordHit]
    readable: tuple[RecordType, ...]


def readable_types(by: Principal | None) -> tuple[RecordType, ...]:
    """The record types this reader may find on a node: reports need a signed-in reader, as
    every study-visit route does."""
    return TYPES if by is not None and by.is_signed_in else (PRACTICE,)


async def search_records(
    session: AsyncSession,
    index: SearchBackend,
    query: SearchQuery,
    *,
    visits: Source[RecordHit],
    types: Collection[str] = (),
    by: Principal | None = None,
) -> Searched:
    """This node's practices and study-visit reports, as this reader may find them
    (`readable_types`), of these record ``types`` (none: both). The practices the
    personal-data gate holds are left out unless ``by`` is signed in, as in the practices'
    own search. The facets are the practices' search's, and `type`."""
    readable = readable_types(by)
    sources = {PRACTICES.name} | ({visits.name} if STUDY_VISIT in readable else set())
    filters = with_types(query.filters, types)
    empty = Results[RecordHit]([], 0, {TYPE_FACET: []}, None)
    if filters is None:
        return Searched(empty, readable)
    query = replace(query, filters=filters | {"source": frozenset(sources)})
    if not (by is not None and by.is_signed_in):
        query = replace(query, hidden=query.hidden | await repository.held_practice_ids(session))
    result = await index.search(session, query)
    marked = snippet_terms(result.corrected or query.text, query.languages)
    found = await PRACTICES.hits(session, result.record_ids, marked)
    if STUDY_VISIT in readable:
        found |= await visits.hits(
            session, [i for i in result.record_ids if i not in found], marked
        )
    facets = {
        facet: [FacetValue.model_construct(value=v, count=n) for v, n in counts.items()]
        for facet, counts in result.facets.items()
    }
    type_facet(facets, readable=readable)
    results = Results(
        items=[found[i] for i in result.record_ids if i in found],
        total=result.total,
        facets=facets,
        next_cursor=result.next_cursor,
        corrected=result.corrected,
    )
    return Searched(results, readable)


async def matching_visits(
    session: AsyncSession,
    index: SearchBackend,
    text: str,
    *,
    host_country: Collection[str] = (),
    languages: tuple[str, ...] = (),
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[uuid.UUID], str | None]:
    """The published reports of this node whose text matches ``text`` (best first), as ids,
    with the cursor of the next page: what `?q=` on the study-visit list reads."""
    filters = {"source": frozenset({SOURCE})}
    if host_country:
        filters["country"] = frozenset(c.upper() for c in host_country)
    query = SearchQuery(text=text, filters=filters, limit=limit, cursor=cursor, languages=languages)
    result = await index.search(session, query)
    return result.record_ids, result.next_cursor


@dataclass(frozen=True)
class Searcher:
    """The search index of the app serving a request, and the reader's languages (their
    Accept-Language): what a route needs to search."""

    index: SearchBackend
    languages: tuple[str, ...]


def searcher(request: Request) -> Searcher:
    """A route's dependency (`Annotated[Searcher | None, Depends(searcher)] = None`)."""
    languages = reader_languages(request.headers.get("accept-language"))
    return Searcher(request.app.state.search, languages)
