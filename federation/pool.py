"""The EU pool in the search index: what EU-wide search sees of each federated record, and the
index's catch-up with what the imports changed (records are stored first, marked pending, and
indexed afterwards, a batch per transaction); and who finds what in it: a record of scope
`network` is found and shown to signed-in readers only (`pool_source`, `pool_record`)."""

import uuid
from collections.abc import Callable
from datetime import date
from typing import Any

import structlog
from sqlalchemy import Engine, Table, bindparam, select, text, update
from sqlalchemy.exc import DataError, DBAPIError, StatementError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from federation.models import FederatedRecord
from federation.projection import FACET_TERMS, printable
from federation.schemas import HubHit
from node.core.locks import INDEX_LEASE, lease
from practices.search.port import IndexDocument
from practices.search.text import QueryTerms, snippet

log = structlog.get_logger()
SEARCH_NAMESPACE = uuid.UUID("6f1c2b52-3c1e-4f0e-9a55-7d3b1c0e5a11")
INDEX_BATCH = 500
# Written as the partial index ix_federated_record_pending is, so that SQLite uses it (it does
# not for "indexed IS 0" or "indexed = 0": every catch-up would read the whole table).
PENDING = text("NOT federated_record.indexed")
PENDING_BATCH = (
    select(FederatedRecord).where(PENDING).order_by(FederatedRecord.record_id).limit(INDEX_BATCH)
)
TEXT_FIELDS = (
    "summary",
    "description",
    "problem_addressed",
    "rationale",
    "lessons_learned",
    "transferability",
    "purpose",
    "programme",
    "observations",
    "findings",
    "recommendations",
)


# Record types that are figures, not records to find: never in the search index.
NOT_SEARCHED = frozenset({"needs_summary"})


def search_id(record_id: str) -> uuid.UUID:
    """A federated record's id in the search index."""
    return uuid.uuid5(SEARCH_NAMESPACE, record_id)


def _start_date(text: Any) -> date | None:
    """A start date to sort by; the schema checks its shape, not that it is a real day
    (2024-02-30): such a date sorts as undated rather than stop the index."""
    try:
        return date.fromisoformat(text) if isinstance(text, str) and text else None
    except ValueError:
        return None


def terms(facet: str, values: Any) -> list[str]:
    """A body's terms that a facet counts: those this version knows, a later version's
    `x-<term>` under `<term>` once this version knows it; any other `x-` term is kept in the
    body (and shown with it) but not counted."""
    known = FACET_TERMS[facet]
    found = values if isinstance(values, list) else [values]
    out: list[str] = []
    for value in found:
        term = value.removeprefix("x-") if isinstance(value, str) else None
        if term in known and term not in out:
            out.append(term)
    return out


def index_document(record: FederatedRecord) -> IndexDocument:
    """What EU-wide search sees of a shared record: the same shape as a node's practices. The
    country facet is the record's origin: a node cannot file records under another country
    (what its `country` field says is shown with the record, not counted)."""
    body = record.body or {}
    titles = [body.get("title", ""), body.get("original_title") or ""]
    titles += [t.get("title", "") for t in body.get("translations", [])]
    texts = [body.get(k) or "" for k in TEXT_FIELDS]
    texts += [o.get("name", "") for o in body.get("organisations", [])]
    start = _start_date(body.get("start_date"))
    evaluation = body.get("evaluation") or {}
    return IndexDocument(
        record_id=search_id(record.record_id),
        title=str(body.get("title", "")),
        title_text=" \n".join(titles),
        body_text=" \n".join(texts),
        sort_date=start,
        texts=(
            (str(body.get("language") or ""), " \n".join(titles[:2]), " \n".join(texts)),
            *(
                (
                    str(t.get("language") or ""),
                    str(t.get("title") or ""),
                    str(t.get("summary") or ""),
                )
                for t in body.get("translations", [])
            ),
        ),
        facets={
            "country": [record.origin],
            "kind": terms("kind", body["kind"]) if "kind" in body else [record.record_type],
            "language": terms("language", body.get("language")),
            "licence": terms("licence", body.get("licence")),
            "evaluation_type": terms("evaluation_type", evaluation.get("type")),
            "intervention_type": terms("intervention_type", body.get("intervention_types", [])),
            "setting": terms("setting", body.get("settings", [])),
            "target_group": terms("target_group", body.get("target_groups", [])),
            "process_focus": terms("process_focus", body.get("process_focus", [])),
            # Every pool record is "federated"; a public one is "federated-public" too, the
            # only source an anonymous reader's search looks in.
            "source": ["federated", PUBLIC] if record.scope == "public" else ["federated"],
        },
    )


# --- who finds what ---------------------------------------------------------------------------

PUBLIC = "federated-public"


class PooledRecords:
    """The EU pool as a search source: what the hub holds from every node, not withdrawn
    (`public_only`: of scope `public`, what an anonymous reader finds)."""

    def __init__(self, name: str, *, public_only: bool) -> None:
        self.name, self.public_only = name, public_only

    async def hits(
        self, session: AsyncSession, record_ids: list[uuid.UUID], terms: QueryTerms
    ) -> dict[uuid.UUID, HubHit]:
        query = select(FederatedRecord).where(
            FederatedRecord.search_id.in_(record_ids), FederatedRecord.withdrawn.is_(False)
        )
        if self.public_only:
            query = query.where(FederatedRecord.scope == "public")
        hits = {}
        for record in await session.scalars(query):
            if record.search_id is not None and record.body is not None:
                hits[record.search_id] = _pooled_hit(record, record.body, terms)
        return hits


def _pooled_hit(record: FederatedRecord, body: dict[str, Any], terms: QueryTerms) -> HubHit:
    summary = body.get("summary") or body.get("purpose") or ""
    return HubHit(
        record_id=record.record_id,
        origin=record.origin,
        record_type=record.record_type,
        kind=str(body.get("kind", record.record_type)),
        title=str(body.get("title", "")),
        summary=str(summary),
        snippet=snippet(f"{summary} {body.get('description') or ''}", terms),
        country=body.get("country") or record.origin,
    )


POOL = PooledRecords("federated", public_only=False)  # for signed-in readers
PUBLIC_POOL = PooledRecords(PUBLIC, public_only=True)  # for anyone else


def pool_source(*, signed_in: bool) -> PooledRecords:
    """What EU-wide search looks in for this reader: every record if signed in, else those of
    scope `public` only (a `network` record is not in the hits, the total or a facet count)."""
    return POOL if signed_in else PUBLIC_POOL


async def pool_record(
    session: AsyncSession, record_id: str, *, signed_in: bool
) -> FederatedRecord | None:
    """A record of the pool as this reader may see it: None if there is none, or if it is of
    scope `network` and the reader is not signed in."""
    record = await session.get(FederatedRecord, record_id)
    if record is None or (record.scope != "public" and not signed_in):
        return None
    return record


def index_pending(session: Session, search: Any) -> int:
    """Bring the search index up to the records the import changed, a batch per transaction,
    and return how many. Idempotent: a crash leaves the rest pending for the next call. A
    record changed again meanwhile (another version) stays pending. A record the index
    cannot take (`_index_batch`) is marked done with the rest and logged: it never holds up
    the others, and is not tried again until a new version of it arrives."""
    done = 0
    table = FederatedRecord.__table__
    assert isinstance(table, Table)
    mark = (
        update(table)
        .where(table.c.record_id == bindparam("rid"), table.c.version == bindparam("v"))
        .values(indexed=True)
    )
    while records := list(session.scalars(PENDING_BATCH)):
        versions = [{"rid": r.record_id, "v": r.version} for r in records]
        _index_batch(session, search, records)
        session.connection().execute(mark, versions)
        session.commit()
        done += len(records)
    return done


def _index_batch(session: Session, search: Any, records: list[FederatedRecord]) -> None:
    """Index a batch in one go; if that fails, each record on its own (each in a savepoint).
    A record that fails alone while others go in, or for what it holds (a NUL that
    PostgreSQL cannot store, a body of the wrong shape), is left out; if none goes in for
    another reason (the index is down), the batch stays pending."""
    try:
        with session.begin_nested():
            reindex(session, search, records)
        return
    except Exception as exc:
        if len(records) == 1 and not _poisoned(exc):
            raise
    left_out: list[tuple[FederatedRecord, Exception]] = []
    indexed = False
    for record in records:
        try:
            with session.begin_nested():
                reindex(session, search, [record])
            indexed = True
        except Exception as failure:
            left_out.append((record, failure))
    transient = [error for _, error in left_out if not _poisoned(error)]
    if transient and not indexed:
        raise transient[0]
    for record, error in left_out:
        log.warning(
            "pool_record_not_indexed",
            record_id=printable(record.record_id),
            version=record.version,
            error=printable(f"{type(error).__name__}: {error}", 500),
        )


def _poisoned(error: BaseException) -> bool:
    """Whether an error comes from what a record holds rather than from the index's state."""
    cause: BaseException = error
    if isinstance(error, StatementError) and not isinstance(error, DBAPIError):
        cause = error.orig or error  # the driver refused a value before it reached the database
    return isinstance(cause, DataError | ValueError | TypeError | KeyError | AttributeError)


def reindex(session: Session, search: Any, records: list[FederatedRecord]) -> None:
    """Bring the search index in line with these records, in one call each way."""
    if search is None or not records:
        return
    latest = {r.record_id: r for r in records}.values()
    # A record whose body its origin's redaction purged leaves the index as a withdrawn one.
    gone = [r.search_id for r in latest if (r.withdrawn or r.redacted) and r.search_id is not None]
    if gone:
        search.remove(session, gone)
    live = [
        index_document(r)
        for r in latest
        if not r.withdrawn and not r.redacted and r.record_type not in NOT_SEARCHED
    ]
    if live:
        search.upsert(session, live)


def catch_up_index(sessions: Callable[[], Session], search: Any) -> int:
    """`index_pending` in one process at a time; 0 when another one is at it."""
    with sessions() as session:
        engine = session.get_bind()
        assert isinstance(engine, Engine)
        with lease(engine, INDEX_LEASE) as mine:
            return index_pending(session, search) if mine else 0


# --- needs heard: every node's counts (issue 17 item 5) --------------------------------------


async def needs_summaries(session: AsyncSession) -> list[FederatedRecord]:
    """The needs summary of each node the pool holds one of (not withdrawn, not purged), by
    country: counts only, as `projection.SharedNeedsSummary` allows."""
    query = (
        select(FederatedRecord)
        .where(
            FederatedRecord.record_type == "needs_summary",
            FederatedRecord.withdrawn.is_(False),
            FederatedRecord.redacted.is_(None),
        )
        .order_by(FederatedRecord.origin)
    )
    return list(await session.scalars(query))
