"""The Meilisearch adapter (official `meilisearch` client), for nodes and hubs at scale.

Documents carry the same analysed text as the SQL adapter's (`analysis.document_terms`: each
text's word forms in its language), so word forms, spelling variants and compounds behave
alike. A query is analysed in the reader's language (the first of `SearchQuery.languages`; in
English when none is given): each word becomes its form in that language. The concepts' names
in the five languages are synonyms of one another (`concept_synonyms`), so a query naming a
concept in one language finds the records naming it in another; Meilisearch adds its own typo
tolerance (the same rule as the SQL adapter's). Facet counts are disjunctive, as in the SQL
adapter: one extra query per filtered facet, sent together in a multi-search.
"""

import json
import uuid
from typing import Any

import anyio
import meilisearch
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from node.core.errors import InvalidInput
from node.core.pagination import decode_cursor, encode_cursor
from practices.search.analysis import LANGUAGES, analyse_words, document_terms, query_terms
from practices.search.concepts import CONCEPTS
from practices.search.port import FACETS, IndexDocument, SearchQuery, SearchResult

INDEX = "practices"
TASK_TIMEOUT_MS = 60_000
SETTINGS: dict[str, Any] = {
    "searchableAttributes": ["title_norm", "body_norm"],
    "filterableAttributes": [*FACETS, "source", "id"],
    "sortableAttributes": ["sort_date"],
    "rankingRules": ["words", "typo", "proximity", "attribute", "sort", "exactness"],
    "typoTolerance": {"enabled": True, "minWordSizeForTypos": {"oneTypo": 5, "twoTypos": 9}},
    "faceting": {"maxValuesPerFacet": 200},
    "pagination": {"maxTotalHits": 1_000_000},
}


def concept_synonyms() -> dict[str, list[str]]:
    """Each concept's names in every language, as index forms, synonyms of one another."""
    synonyms: dict[str, set[str]] = {}
    for concept in CONCEPTS:
        names = {
            " ".join(forms[0] for forms in analyse_words(name, language))
            for language in LANGUAGES
            for name in concept.names(language)
        } - {""}
        for name in names:
            synonyms.setdefault(name, set()).update(names - {name})
    return {name: sorted(others) for name, others in sorted(synonyms.items()) if others}


def settings() -> dict[str, Any]:
    return SETTINGS | {"synonyms": concept_synonyms()}


def filter_expression(filters: dict[str, frozenset[str]], *, skip: str | None = None) -> list[str]:
    """Meilisearch filter clauses: AND across facets, OR (IN) within one; values quoted."""
    clauses = []
    for facet in sorted(filters):
        if facet == skip or not filters[facet] or facet not in (*FACETS, "source"):
            continue
        values = ", ".join(json.dumps(v) for v in sorted(filters[facet]))
        clauses.append(f"{facet} IN [{values}]")
    return clauses


def document(doc: IndexDocument) -> dict[str, Any]:
    title, body = document_terms(doc)
    return {
        "id": str(doc.record_id),
        "title_norm": title,
        "body_norm": body,
        "sort_date": doc.sort_date.toordinal() if doc.sort_date else 0,
        **doc.facets,
    }


def search_requests(query: SearchQuery, offset: int) -> list[dict[str, Any]]:
    reader = query.languages[0] if query.languages else "en"
    analysed = query_terms(query.text, [reader])
    # the index holds both forms of a word that has two (accented and folded stems): one will do
    words = [word.prefix or min(word.forms) for word in analysed.words]
    being_typed = bool(analysed.words) and analysed.words[-1].prefix is not None
    text = " ".join(words) + ("" if being_typed or not words else " ")
    main: dict[str, Any] = {
        "indexUid": INDEX,
        "q": text,
        "matchingStrategy": "all",
        "offset": offset,
        "limit": query.limit,
        "filter": filter_expression(query.filters),
        "facets": list(FACETS),
        "attributesToRetrieve": ["id"],
    }
    if query.sort == "date" or not words:
        main["sort"] = ["sort_date:desc"]
    requests = [main]
    for facet in sorted(query.filters):
        requests.append(
            {
                "indexUid": INDEX,
                "q": text,
                "matchingStrategy": "all",
                "limit": 0,
                "facets": [facet],
                "filter": filter_expression(query.filters, skip=facet),
            }
        )
    if query.hidden:  # out of the hits and of every count
        ids = ", ".join(json.dumps(str(i)) for i in sorted(query.hidden))
        for request in requests:
            request["filter"].append(f"id NOT IN [{ids}]")
    return requests


class MeiliSearch:
    name = "meilisearch"

    def __init__(self, url: str, api_key: str | None) -> None:
        self.client = meilisearch.Client(url, api_key)
        self._configured = False

    def _index(self) -> Any:
        if not self._configured:
            self._wait(self.client.create_index(INDEX, {"primaryKey": "id"}), allow_exists=True)
            self._wait(self.client.index(INDEX).update_settings(settings()))
            self._configured = True
        return self.client.index(INDEX)

    def _wait(self, task: Any, *, allow_exists: bool = False) -> None:
        done = self.client.wait_for_task(task.task_uid, timeout_in_ms=TASK_TIMEOUT_MS)
        error = getattr(done, "error", None) or {}
        if done.status == "failed" and not (
            allow_exists and error.get("code") == "index_already_exists"
        ):
            raise RuntimeError(f"Meilisearch task failed: {error}")

    async def search(self, session: AsyncSession, query: SearchQuery) -> SearchResult:
        offset = 0
        if query.cursor:
            (offset,) = decode_cursor(query.cursor, 1)
            if not isinstance(offset, int) or offset < 0:
                raise InvalidInput("cursor", "not a cursor this server issued")
        requests = search_requests(query, offset)
        self._index()
        results = (await anyio.to_thread.run_sync(self.client.multi_search, requests))["results"]
        main = results[0]
        facets = {f: dict(main.get("facetDistribution", {}).get(f, {})) for f in FACETS}
        for facet, result in zip(sorted(query.filters), results[1:], strict=True):
            facets[facet] = dict(result.get("facetDistribution", {}).get(facet, {}))
        facets = {
            f: dict(sorted(c.items(), key=lambda x: (-x[1], x[0]))) for f, c in facets.items()
        }
        total = int(main.get("estimatedTotalHits", main.get("totalHits", 0)))
        ids = [uuid.UUID(hit["id"]) for hit in main["hits"]]
        more = offset + len(ids) < total
        return SearchResult(
            ids, total, facets, encode_cursor([offset + len(ids)]) if more else None
        )

    def upsert(self, session: Session, documents: list[IndexDocument]) -> None:
        if documents:
            self._wait(self._index().add_documents([document(d) for d in documents], "id"))

    def remove(self, session: Session, record_ids: list[uuid.UUID]) -> None:
        if record_ids:
            self._wait(self._index().delete_documents([str(i) for i in record_ids]))

    def clear(self, session: Session) -> None:
        self._wait(self._index().delete_all_documents())
