"""What the federation keeps of a person on this node: the gate's findings, which quote the
words they found (and the text around them), the justification of a released hold, and the
bodies of this node's own feed (each version of a record it shared). Records of other nodes
(a mirror's or a hub's copies) are listed, never changed: only their origin may redact them.

An erasure drops the quotations that name the person and, for every record of this node whose
shared bodies named the person, queues a signed redaction (`erasure_request`) of the bodies
below the version that no longer names them, to run after the record's own change: the feed
appends the new version first, then the redaction purges the earlier ones here, at the hub
and on every mirror (federation.redaction). Synchronous; never commits.
"""

import json
import uuid
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from federation.feed import FederationNotConfigured
from federation.models import FederatedRecord, FeedEntry, GateHold
from federation.redaction import QUOTING, redact_record, scrub_after_commit
from node.core.outbox import JobContext, handles
from node.core.privacy import REMOVED, Erased, Matcher, Place, queue, scrubbed, words_in
from node.core.settings import Settings
from practices import published_records

REDACT = "privacy.redact"  # outbox topic: "<record type>:<id>:<below, 0 for all>"
SCRUB = "scrub"  # the same topic's last job of an erasure: the database scrubbed
log = structlog.get_logger()


def _own(settings: Settings | None) -> str | None:
    return f"{settings.country}:" if settings is not None and settings.country else None


def _feed_body(entry: FeedEntry) -> Any:
    if entry.body is not None:
        return json.loads(entry.body)
    if entry.payload and entry.redacted is None:
        return json.loads(entry.payload).get("body")
    return None


def find(session: Session, matcher: Matcher, settings: Settings | None) -> list[Place]:
    places: list[Place] = []
    for hold in session.scalars(select(GateHold).order_by(GateHold.id)):
        found = words_in(matcher, [hold.hits, hold.justification, hold.resolved_by])
        if found:
            value = {
                "record_type": hold.record_type,
                "record_id": str(hold.record_id),
                "version": hold.version,
                "hits": hold.hits,
                "justification": hold.justification,
                "resolved_by": hold.resolved_by,
            }
            places.append(Place("gate_hold", str(hold.id), "(hold)", value, found))
    own = _own(settings)
    for entry in session.scalars(select(FeedEntry).order_by(FeedEntry.seq)):
        body = _feed_body(entry)
        found = words_in(matcher, body) if body is not None else ()
        if found:
            kind = "feed_entry" if own and entry.record_id.startswith(own) else "feed_entry.relayed"
            places.append(Place(kind, str(entry.seq), entry.record_id, body, found))
    for record in session.scalars(select(FederatedRecord).order_by(FederatedRecord.record_id)):
        body = record.body  # a mirror's or a hub's copy of another node's record
        found = words_in(matcher, body) if body is not None else ()
        if found:
            places.append(Place("federated_record", record.record_id, record.origin, body, found))
    return places


def erase(
    session: Session, matcher: Matcher, settings: Settings | None
) -> tuple[Erased, dict[tuple[str, uuid.UUID], int]]:
    """Drop the gate's quotations and justifications that name the person; return the records
    of this node whose shared bodies name them (to be redacted)."""
    erased = Erased()
    for hold in session.scalars(select(GateHold)):
        hits = []
        for hit in hold.hits:
            if isinstance(hit, dict) and words_in(matcher, [hit.get(k) for k in QUOTING]):
                hit = {k: v for k, v in hit.items() if k not in QUOTING}
                erased.add("gate_hold.words")
            hits.append(hit)
        hold.hits = hits
        justification, count = scrubbed(matcher, hold.justification)
        if count:
            hold.justification = justification
            erased.add("gate_hold.justification")
        if hold.resolved_by and matcher.spans(hold.resolved_by):
            hold.resolved_by = REMOVED
            erased.add("gate_hold.resolved_by")
    named: dict[tuple[str, uuid.UUID], int] = {}  # the last version whose body names them
    own = _own(settings)
    if own:
        entries = select(FeedEntry).where(FeedEntry.record_id.startswith(own, autoescape=True))
        for entry in session.scalars(entries):
            body = _feed_body(entry)
            if body is not None and words_in(matcher, body):
                key = (entry.record_type, uuid.UUID(entry.record_id.removeprefix(own)))
                named[key] = max(named.get(key, 0), entry.version)
    return erased, named


def queue_redactions(session: Session, records: dict[tuple[str, uuid.UUID], int | None]) -> None:
    """A redaction job per record (the versions below the given one; None: every version),
    after the jobs the record's change queued (the feed appends its new version first)."""
    for (record_type, record_id), below in sorted(records.items(), key=str):
        queue(session, REDACT, f"{record_type}:{record_id}:{below or 0}")
    queue(session, REDACT, SCRUB)  # last: after the search index let go of the old text


def below_versions(
    session: Session, named: dict[tuple[str, uuid.UUID], int]
) -> dict[tuple[str, uuid.UUID], int | None]:
    """For each record: redact below its current version if it is published and that version
    no longer names the person (its text changed), else every version (it stops travelling;
    if published, the feed's reconciliation shares its current version again, projected anew
    without what the erasure removed elsewhere, such as an organisation's name)."""
    published = {(r.record_type, r.id): r.version for r in published_records(session)}
    return {
        key: published[key] if published.get(key, 0) > last else None for key, last in named.items()
    }


@handles(REDACT)
def redact_erased(session: Session, entity_id: str, context: JobContext) -> None:
    """The signed redaction of an erasure request, then the database scrubbed of what it and
    the record's change left (the search index's segments, the write-ahead log)."""
    if entity_id == SCRUB:
        scrub_after_commit(session)
        return
    record_type, local_id, below = entity_id.split(":")
    try:
        redact_record(
            session,
            context.settings,
            record_type,
            uuid.UUID(local_id),
            "erasure_request",
            below=int(below) or None,
        )
    except FederationNotConfigured as exc:
        log.warning("erasure_not_redacted", record=entity_id, reason=str(exc))
