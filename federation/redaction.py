"""An origin's signed redactions, and leaving no trace of what they purge.

A redaction is an entry of the origin's own feed (`op: redact`) naming the earlier versions
(and seqs) of one of its records whose bodies are purged, and why. The node purges them in its
feed at once; the hub and every mirror purge theirs when they apply it (federation.sync). A
database keeps deleted bytes where nobody looks (SQLite: free space in its pages, the write-ahead
log, the full-text index's segments), so each purge is followed by a scrub.
"""

import threading
import uuid
from typing import Any

import structlog
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session

from federation import feed
from federation.models import FeedEntry, GateHold
from node.core.db import create_sync_engine
from node.core.settings import Settings
from practices.search import compact

log = structlog.get_logger()
QUOTING = ("words", "context")  # what of a gate's finding quotes the record's text


def redact_record(
    session: Session,
    settings: Settings | None,
    record_type: str,
    local_id: uuid.UUID | str,
    reason: str,
    *,
    below: int | None = None,
) -> FeedEntry | None:
    """Purge the bodies of a record of this node from its feed and have the hub and every
    mirror purge theirs: a signed redaction of every earlier body (or, with `below`, of the
    versions below it: a correction). Without `below` the record stops travelling first (a
    tombstone, if its last entry is an upsert). The database is scrubbed once the caller
    commits. None when the record has nothing left to purge (or federation is not set up)."""
    if reason not in feed.REDACTION_REASONS:
        raise ValueError(f"a redaction's reason is one of {', '.join(feed.REDACTION_REASONS)}")
    if settings is None or not settings.country:
        return None
    origin = settings.country
    rid = feed.record_id(origin, local_id)
    key = feed.active_key(session, settings)
    last = feed.last_entry(session, rid)
    if last is None:
        return None
    if below is None and last.op == "upsert":
        feed.append(
            session,
            key,
            origin=origin,
            record_type=record_type,
            rid=rid,
            version=last.version,
            op="withdraw",
        )
    entry = feed.redact(
        session, key, origin=origin, record_type=record_type, rid=rid, reason=reason, below=below
    )
    _forget_findings(session, record_type, local_id)
    scrub_after_commit(session)
    return entry


def _forget_findings(session: Session, record_type: str, local_id: uuid.UUID | str) -> None:
    """The words the personal-data gate found in the record (its holds' findings quote them,
    with their context) are dropped: the findings keep where and what fired."""
    try:
        record_id = uuid.UUID(str(local_id))
    except ValueError:
        return
    holds = session.scalars(
        select(GateHold).where(GateHold.record_type == record_type, GateHold.record_id == record_id)
    )
    for hold in holds:
        hold.hits = [
            {k: v for k, v in hit.items() if k not in QUOTING} if isinstance(hit, dict) else hit
            for hit in hold.hits
        ]


def scrub_after_commit(session: Session) -> None:
    """Scrub the database of what this transaction purges: the full-text index's segments
    merged now (the index let go of the record in this transaction, or before), and once the
    transaction commits, the write-ahead log checkpointed and truncated, in a thread of its
    own (it waits for readers of older snapshots; nobody waits for it)."""
    engine = session.get_bind()
    if not isinstance(engine, Engine) or engine.dialect.name != "sqlite":
        return  # PostgreSQL: no deleted row is readable through SQL once committed
    compact(session)
    if session.info.get("scrub_pending"):
        return
    session.info["scrub_pending"] = True
    url = engine.url.render_as_string(hide_password=False)

    def after_commit(_: Session) -> None:
        session.info.pop("scrub_pending", None)
        threading.Thread(target=_checkpoint_quietly, args=(url,)).start()

    event.listen(session, "after_commit", after_commit, once=True)


def _checkpoint_quietly(url: str) -> None:
    try:
        checkpoint(url)
    except Exception:  # the purge stands; the next one checkpoints again
        log.exception("scrub_failed")


def scrub(engine: Engine) -> dict[str, Any]:
    """Leave no purged text in a SQLite database's files, once what purged it is committed:
    the full-text index's segments merged (FTS5 keeps a removed document's words in them until
    then), deleted content overwritten with zeros (`secure_delete`, on every connection of
    this program), and the write-ahead log checkpointed and truncated (it still holds the
    pages as they were)."""
    if engine.dialect.name != "sqlite":
        return {}
    url = engine.url.render_as_string(hide_password=False)
    own = create_sync_engine(url)  # the standard driver (the caller's engine may be async)
    try:
        with Session(own) as session:
            compact(session)
            session.commit()
    finally:
        own.dispose()
    return checkpoint(url)


def checkpoint(url: str) -> dict[str, Any]:
    """Checkpoint a SQLite database's write-ahead log and truncate it to nothing."""
    own = create_sync_engine(url)
    try:
        raw = own.raw_connection()
        try:
            connection: Any = raw.driver_connection
            busy, logged, moved = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            raw.close()
    finally:
        own.dispose()
    if busy:
        log.warning("scrub_checkpoint_busy", logged=logged, checkpointed=moved)
    return {"busy": busy, "logged": logged, "checkpointed": moved}
