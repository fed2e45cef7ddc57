"""One search flow for every caller (the JSON API, the EU pool, the web pages).

A query goes to the index, restricted to one source of records: this node's own practices
(`LOCAL`) or the EU pool a hub holds (a `Source` the federation supplies, since the pool's
records are its own). The hits come back as that source's records, in the index's order, each
with a snippet of the query's words, beside the facet counts and the cursor of the next page.
"""

import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Generic, Protocol, TypeVar, cast

from sqlalchemy.ext.asyncio import AsyncSession

from node.core import answers
from node.core.auth import Principal
from practices import repository
from practices.schemas import FacetValue, SearchHit
from practices.search.analysis import snippet_terms
from practices.search.facets import CURRENT_SEQ
from practices.search.port import SearchBackend, SearchQuery
from practices.search.text import QueryTerms, snippet
from practices.vocabulary import PracticeKind

Hit = TypeVar("Hit")


class Source(Protocol[Hit]):
    """Where the hits come from: the records the index tags with `name` as their source."""

    @property
    def name(self) -> str: ...

    async def hits(
        self, session: AsyncSession, record_ids: list[uuid.UUID], terms: QueryTerms
    ) -> dict[uuid.UUID, Hit]:
        """The hits of those records still shown, by id; one no longer shown is left out."""
        ...


@dataclass(frozen=True)
class Results(Generic[Hit]):
    items: list[Hit]
    total: int
    facets: dict[str, list[FacetValue]]
    next_cursor: str | None
    corrected: str | None = None  # the query searched instead, a word of it corrected


def facet_filters(**chosen: Sequence[object]) -> dict[str, frozenset[str]]:
    """The values chosen for each facet, as the index stores them (countries in upper case,
    languages in lower case); a facet with none chosen does not filter."""
    cases: dict[str, Callable[[str], str]] = {"country": str.upper, "language": str.lower}
    return {
        facet: frozenset(cases.get(facet, str)(str(v)) for v in values)
        for facet, values in chosen.items()
        if values
    }


async def search(
    session: AsyncSession,
    index: SearchBackend,
    source: Source[Hit],
    query: SearchQuery,
    *,
    by: Principal | None = None,
) -> Results[Hit]:
    """Filters: AND across facets, OR within one. Facet counts for a facet apply every filter
    but that facet's own. This node's records the personal-data gate holds are left out unless
    `by` is signed in (the default is the anonymous reader, so a caller that forgets to say
    who reads leaks nothing)."""
    query = replace(query, filters=query.filters | {"source": frozenset({source.name})})
    if source.name == LocalPractices.name and not (by is not None and by.is_signed_in):
        query = replace(query, hidden=query.hidden | await repository.held_practice_ids(session))
    result = await index.search(session, query)
    marked = snippet_terms(result.corrected or query.text, query.languages)
    found = await source.hits(session, result.record_ids, marked)
    return Results(
        items=[found[i] for i in result.record_ids if i in found],
        total=result.total,
        facets=_facet_values(result.facets),
        next_cursor=result.next_cursor,
        corrected=result.corrected,
    )


async def generation(
    session: AsyncSession, index: SearchBackend, records: str = "practices"
) -> tuple[int, int] | None:
    """What a search answer may be kept under (`node.core.answers`): the change counter of the
    records it shows (`practices`, or the EU `pool`) and the index's sequence number, read
    before the search, so an answer kept under them is the one any search would give until
    either moves. None for an index this node does not write in step (Meilisearch applies its
    changes later): nothing is kept then."""
    if index.name != "sql":
        return None
    number = await answers.counter(session, records)
    if number is None:
        return None
    seq = await answers.stamp(session, CURRENT_SEQ) or 0
    return number, int(cast(int, seq))


def query_key(query: SearchQuery) -> tuple[object, ...]:
    """The query as a key: the same for the same query however its filters were given."""
    filters = tuple(sorted((facet, tuple(sorted(v))) for facet, v in query.filters.items()))
    hidden = tuple(sorted(str(i) for i in query.hidden))
    return (query.text, filters, query.sort, query.limit, query.cursor, hidden, query.languages)


# The facet counts of the latest results, as the answer gives them: an adapter that counted
# nothing again (the same query at the same state of the index) gives back the same counts,
# so their values are not built again either. Keyed by the counts' identity, each kept beside
# its values so that the identity cannot be reused while it is remembered.
_FACET_VALUES: "OrderedDict[int, tuple[object, dict[str, list[FacetValue]]]]" = OrderedDict()
FACET_VALUES_KEPT = 64


def _facet_values(facets: dict[str, dict[str, int]]) -> dict[str, list[FacetValue]]:
    kept = _FACET_VALUES.get(id(facets))
    if kept is not None and kept[0] is facets:
        _FACET_VALUES.move_to_end(id(facets))
        return {facet: list(values) for facet, values in kept[1].items()}
    values = {
        facet: [FacetValue.model_construct(value=v, count=n) for v, n in counts.items()]
        for facet, counts in facets.items()
    }
    _FACET_VALUES[id(facets)] = (facets, values)
    while len(_FACET_VALUES) > FACET_VALUES_KEPT:
        _FACET_VALUES.popitem(last=False)
    return {facet: list(v) for facet, v in values.items()}


class LocalPractices:
    """This node's own published practices, not a mirrored pool."""

    name = "local"

    async def hits(
        self, session: AsyncSession, record_ids: list[uuid.UUID], terms: QueryTerms
    ) -> dict[uuid.UUID, SearchHit]:
        found = await repository.search_hit_rows(session, record_ids)
        # Columns as stored (validated when written): built without validating them again.
        return {
            p.id: SearchHit.model_construct(
                id=p.id,
                kind=PracticeKind(p.kind),
                title=p.title,
                original_title=p.original_title,
                country=p.country,
                language=p.language,
                summary=p.summary,
                snippet=snippet(f"{p.summary} {p.description or ''}", terms),
                published_at=p.published_at,
                held=p.held,
            )
            for p in found
        }


LOCAL = LocalPractices()
