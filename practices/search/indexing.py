"""The SQL adapter's bulk writes: a batch of documents analysed and written a chunk at a time.

On SQLite, each chunk's full-text rows are made by one statement that reads them back from
`search_document` (`FTS_FROM_DOCUMENTS`), and the batch's facet rows are written by one
statement from a JSON object (`FACETS_FROM_JSON`): no text is bound twice, and neither
statement needs Python's lock while it runs. When the connection is the standard library's
`sqlite3` and the batch has more than one chunk, each runs in a helper thread while this one
analyses the next chunk (`analysis.document_terms`, pure Python): indexing's two halves side
by side on two cores. This thread issues nothing on the connection until the helper is done,
so the connection is never used by both at once, and what is written (rows, their order,
their numbers) is the same as one after the other.
"""

import json
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date
from typing import Any

from sqlalchemy import Table, delete, insert, text
from sqlalchemy.orm import Session

from practices.search.analysis import document_terms
from practices.search.models import SearchDocument, SearchFacet
from practices.search.port import IndexDocument

# PostgreSQL refuses a tsvector over 1 MB; nobody searches past the first 200,000 characters.
MAX_INDEXED_TEXT = 200_000
# Documents analysed, then written, together.
ANALYSED_TOGETHER = 250
SEARCH_DOCUMENT: Table = SearchDocument.__table__  # type: ignore[assignment]
# The chunk's documents as they were just written, in order of number (FTS5 appends rows in
# increasing order without flushing its pending terms).
FTS_FROM_DOCUMENTS = (
    "INSERT INTO practice_fts(rowid, title_norm, body_norm) "
    "SELECT doc_no, title_norm, body_norm FROM search_document "
    "WHERE doc_no IN (SELECT value FROM json_each(?)) ORDER BY doc_no"
)

# The facet rows of a batch, as one JSON object {facet: {value: [doc_no, ...]}}: one
# statement (no Python between rows, so it can run beside the analysis). Grouped so, the
# batch's text is parsed once and each row costs no JSON of its own (an array of
# [doc_no, facet, value] rows, each read by `json_extract`, cost ~1.7 times as much), and
# rows come in the order of `ix_search_facet_documents`.
FACETS_FROM_JSON = (
    "INSERT INTO search_facet (doc_no, facet, value) SELECT d.value, f.key, v.key "
    "FROM json_each(?) f, json_each(f.value) v, json_each(v.value) d"
)

Row = tuple[uuid.UUID, Any, str, str, str]


def many(session: Session, sql: str, rows: list[tuple[Any, ...]]) -> None:
    """One statement for many rows, straight to the driver (`?` placeholders; psycopg's `%s`
    on PostgreSQL)."""
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        sql = sql.replace("?", "%s")
    connection.exec_driver_sql(sql, rows)


def write_documents(
    session: Session,
    documents: list[IndexDocument],
    existing: dict[uuid.UUID, int],
    seq: int,
) -> None:
    """Each document's row in `search_document` (updated when ``existing`` numbers it, else
    new), its facets in `search_facet` (an existing document's replaced) and, on SQLite, its
    full-text rows. On SQLite the new documents are numbered first (the highest number plus
    one, in order: what SQLite's own rowids would be; the search state's row, updated
    before, keeps other writers out), so that their facets are written beside the first
    chunk's analysis."""
    sqlite = session.get_bind().dialect.name == "sqlite"
    # Rows as the driver takes them (executemany without SQLAlchemy's work per value):
    # SQLite holds a UUID as its hex digits and a date as its ISO form.
    day: Callable[[date | None], Any] = (
        (lambda d: d.isoformat() if d else None) if sqlite else (lambda d: d)
    )
    doc_nos = dict(existing)
    if existing:
        session.execute(delete(SearchFacet).where(SearchFacet.doc_no.in_(list(existing.values()))))
    with _beside(session, len(documents) > ANALYSED_TOGETHER) as run:
        pending: Future[None] | None = None
        if sqlite:
            last = session.scalar(text("SELECT COALESCE(MAX(doc_no), 0) FROM search_document"))
            new = [d.record_id for d in documents if d.record_id not in existing]
            doc_nos |= {record_id: int(last or 0) + 1 + i for i, record_id in enumerate(new)}
            as_json = json.dumps(_facets_grouped(documents, doc_nos), ensure_ascii=False)
            pending = run(FACETS_FROM_JSON, as_json)
        for start in range(0, len(documents), ANALYSED_TOGETHER):
            rows: list[Row] = []
            for d in documents[start : start + ANALYSED_TOGETHER]:
                title_norm, body_norm = document_terms(d)
                rows.append(
                    (
                        d.record_id,
                        day(d.sort_date),
                        d.title[:300],
                        title_norm[:MAX_INDEXED_TEXT],
                        body_norm[:MAX_INDEXED_TEXT],
                    )
                )
            if pending is not None:
                pending.result()  # the connection free again
            old = [(*r[1:], existing[r[0]]) for r in rows if r[0] in existing]
            new_rows = [r for r in rows if r[0] not in existing]
            if old:
                many(
                    session,
                    "UPDATE search_document SET active = ?, seq = ?, sort_date = ?, title = ?, "
                    "title_norm = ?, body_norm = ? WHERE doc_no = ?",
                    [(True, seq, *r) for r in old],
                )
            if new_rows and sqlite:
                many(
                    session,
                    "INSERT INTO search_document (doc_no, record_id, active, seq, sort_date, "
                    "title, title_norm, body_norm) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [(doc_nos[r[0]], r[0].hex, True, seq, *r[1:]) for r in new_rows],
                )
            elif new_rows:
                keys = ("record_id", "sort_date", "title", "title_norm", "body_norm")
                inserted = session.execute(
                    insert(SEARCH_DOCUMENT).returning(
                        SearchDocument.doc_no,
                        SearchDocument.record_id,
                        sort_by_parameter_order=True,
                    ),
                    [
                        dict(zip(keys, r, strict=True)) | {"active": True, "seq": seq}
                        for r in new_rows
                    ],
                )
                doc_nos |= {record_id: doc_no for doc_no, record_id in inserted}
            if sqlite:
                chunk = "[" + ",".join(str(doc_nos[r[0]]) for r in rows) + "]"
                pending = run(FTS_FROM_DOCUMENTS, chunk)
        if pending is not None:
            pending.result()
    if not sqlite:
        facets = _facet_rows(documents, doc_nos)
        if facets:
            insert_facets = "INSERT INTO search_facet (doc_no, facet, value) VALUES (?, ?, ?)"
            many(session, insert_facets, facets)


def _facet_rows(
    documents: list[IndexDocument], doc_nos: dict[uuid.UUID, int]
) -> list[tuple[int, str, str]]:
    # each document's number looked up once (a UUID's hash is a Python call), not per value
    numbers = [doc_nos[d.record_id] for d in documents]
    return [
        (doc_no, facet, value)
        for doc_no, d in zip(numbers, documents, strict=True)
        for facet, values in d.facets.items()
        for value in (values if len(values) < 2 else dict.fromkeys(values))
    ]


def _facets_grouped(
    documents: list[IndexDocument], doc_nos: dict[uuid.UUID, int]
) -> dict[str, dict[str, list[int]]]:
    """The rows of `_facet_rows`, as {facet: {value: [doc_no, ...]}}."""
    grouped: dict[str, dict[str, list[int]]] = {}
    numbers = [doc_nos[d.record_id] for d in documents]
    for doc_no, d in zip(numbers, documents, strict=True):
        for facet, values in d.facets.items():
            if not values:
                continue
            by_value = grouped.get(facet)
            if by_value is None:
                by_value = grouped[facet] = {}
            for value in values if len(values) < 2 else dict.fromkeys(values):
                found = by_value.get(value)
                if found is None:
                    by_value[value] = [doc_no]
                else:
                    found.append(doc_no)
    return grouped


@contextmanager
def _beside(
    session: Session, wanted: bool
) -> Iterator[Callable[[str, str], "Future[None] | None"]]:
    """Runs one statement with one parameter: in a helper thread on the standard library's
    SQLite connection when ``wanted`` (the caller waits for it before using the connection
    again), else at once."""
    connection = session.connection()
    driver = connection.connection.driver_connection
    if not wanted or not isinstance(driver, sqlite3.Connection):

        def at_once(sql: str, parameter: str) -> None:
            connection.exec_driver_sql(sql, (parameter,))

        yield at_once
        return
    with ThreadPoolExecutor(1, thread_name_prefix="search-index") as helper:

        def beside(sql: str, parameter: str) -> Future[None]:
            return helper.submit(_execute, driver, sql, parameter)

        yield beside


def _execute(driver: sqlite3.Connection, sql: str, parameter: str) -> None:
    driver.execute(sql, (parameter,)).close()
