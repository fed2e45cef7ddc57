"""The search port: what the API asks of any search adapter (SQL full text, Meilisearch)."""

import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Literal, Protocol

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

FACETS = (
    "country",
    "kind",
    "intervention_type",
    "setting",
    "target_group",
    "process_focus",
    "evaluation_type",
    "language",
    "licence",
)
Sort = Literal["relevance", "date"]


@dataclass(frozen=True)
class IndexDocument:
    """One searchable record, as every adapter receives it."""

    record_id: uuid.UUID
    title: str
    title_text: str
    body_text: str
    sort_date: date | None
    facets: dict[str, list[str]]
    # Each text in its own language, (language, title, body): what the analysis reads (each
    # text stemmed in its language). Empty: `title_text` and `body_text`, folded only.
    texts: tuple[tuple[str, str, str], ...] = ()


@dataclass(frozen=True)
class SearchQuery:
    text: str = ""
    filters: dict[str, frozenset[str]] = field(default_factory=dict)
    sort: Sort = "relevance"
    limit: int = 20
    cursor: str | None = None
    # Records left out whatever they match, from the hits, the total and every facet count:
    # those the reader may not see (held by the personal-data gate, for anonymous readers).
    hidden: frozenset[uuid.UUID] = frozenset()
    # The reader's language first (a query's words are analysed in it and in the languages of
    # the records present); none: every analysed language alike.
    languages: tuple[str, ...] = ()


@dataclass
class SearchResult:
    record_ids: list[uuid.UUID]
    total: int
    # Disjunctive counts: for each facet, the filters on the other facets apply, not its own,
    # so the alternatives within a facet stay visible with what choosing them would give.
    facets: dict[str, dict[str, int]]
    next_cursor: str | None
    # The query as searched when a word matched nothing and was corrected ("showing results
    # for ..."); None when it was searched as typed.
    corrected: str | None = None


class SearchBackend(Protocol):
    name: str

    async def search(self, session: AsyncSession, query: SearchQuery) -> SearchResult: ...

    def upsert(self, session: Session, documents: list[IndexDocument]) -> None: ...

    def remove(self, session: Session, record_ids: list[uuid.UUID]) -> None: ...

    def clear(self, session: Session) -> None: ...
