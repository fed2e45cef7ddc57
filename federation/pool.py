"""The EU pool in the search index: what EU-wide search sees of each federated record, and the
index's catch-up with what the imports changed (records are stored first, marked pending, and
indexed afterwards, a batch per transaction)."""

import uuid
from collections.abc import Callable
from datetime import date
from typing import Any

from sqlalchemy import Engine, Table, bindparam, select, text, update
from sqlalchemy.orm import Session

from federation.models import FederatedRecord
from node.core.locks import INDEX_LEASE, lease
from practices.search.port import IndexDocument

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


def index_document(record: FederatedRecord) -> IndexDocument:
    """What EU-wide search sees of a shared record: the same shape as a node's practices."""
    body = record.body or {}
    titles = [body.get("title", ""), body.get("original_title") or ""]
    titles += [t.get("title", "") for t in body.get("translations", [])]
    texts = [body.get(k) or "" for k in TEXT_FIELDS]
    texts += [o.get("name", "") for o in body.get("organisations", [])]
    start = _start_date(body.get("start_date"))
    return IndexDocument(
        record_id=search_id(record.record_id),
        title=str(body.get("title", "")),
        title_text=" \n".join(titles),
        body_text=" \n".join(texts),
        sort_date=start,
        facets={
            "country": [body.get("country") or record.origin],
            "kind": [body.get("kind", record.record_type)],
            "language": [body.get("language", "")],
            "licence": [body["licence"]] if body.get("licence") else [],
            "evaluation_type": [body["evaluation"]["type"]] if body.get("evaluation") else [],
            "intervention_type": body.get("intervention_types", []),
            "setting": body.get("settings", []),
            "target_group": body.get("target_groups", []),
            "process_focus": body.get("process_focus", []),
            "source": ["federated"],
        },
    )


def index_pending(session: Session, search: Any) -> int:
    """Bring the search index up to the records the import changed, a batch per transaction,
    and return how many. Idempotent: a crash leaves the rest pending for the next call. A
    record changed again meanwhile (another version) stays pending."""
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
        reindex(session, search, records)
        session.connection().execute(mark, versions)
        session.commit()
        done += len(records)
    return done


def reindex(session: Session, search: Any, records: list[FederatedRecord]) -> None:
    """Bring the search index in line with these records, in one call each way."""
    if search is None or not records:
        return
    latest = {r.record_id: r for r in records}.values()
    gone = [r.search_id for r in latest if r.withdrawn and r.search_id is not None]
    if gone:
        search.remove(session, gone)
    live = [index_document(r) for r in latest if not r.withdrawn]
    if live:
        search.upsert(session, live)


def catch_up_index(sessions: Callable[[], Session], search: Any) -> int:
    """`index_pending` in one process at a time; 0 when another one is at it."""
    with sessions() as session:
        engine = session.get_bind()
        assert isinstance(engine, Engine)
        with lease(engine, INDEX_LEASE) as mine:
            return index_pending(session, search) if mine else 0
