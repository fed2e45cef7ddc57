"""The feed follows the published state, always.

The outbox's feed jobs bring a record's feed entry in step after each change; this module makes
sure nothing stays out of step when a job could not (no signing key yet, a key file missing, a
crash, work given up, a country set after records were published). It compares every published
practice and study-visit report with the feed's last entry for it and brings the feed in step
through `publish.publish` (so the personal-data gate and its holds apply): what is published but
missing, or there in an older version, is appended; what the feed still carries but is no longer
published (withdrawn, unpublished, erased) gets a tombstone. It runs at start and in every
periodic sweep (`federation.tasks`), after `integra keys init` and `keys rotate`, and as
`integra feed reconcile`. `status` says, for each published record not in the feed at its
current version, why: held by the gate, its job failed (with the error), or waiting.
"""

import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from functools import partial
from typing import Literal, NamedTuple

import structlog
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from federation import feed
from federation.models import FeedEntry, GateHold
from federation.publish import practice_body, publish, scope_of, study_visit_body
from node.core import outbox
from node.core.models import OutboxMessage
from node.core.settings import Settings
from practices import (
    PRACTICE_CHANGED,
    STUDY_VISIT_CHANGED,
    published_practice,
    published_records,
    published_visit,
)

log = structlog.get_logger()
BATCH = 200  # records brought in step per transaction
TOPICS = {"practice": PRACTICE_CHANGED, "study_visit": STUDY_VISIT_CHANGED}


def bring_in_step(
    session: Session, settings: Settings | None, record_type: str, local_id: uuid.UUID
) -> None:
    """Bring the feed in step with one record as it is now (locked until the transaction ends):
    the feed jobs' work, and the reconciliation's for each record out of step."""
    scope = "public"
    if record_type == "practice":
        practice = published_practice(session, local_id)
        version, build = practice.version, None
        if practice.published is not None:
            build = partial(practice_body, session, practice.published)
            scope = scope_of(practice.published)
    else:
        visit = published_visit(session, local_id)
        origin = settings.country if settings else None
        version, build = visit.version, None
        if visit.published is not None and origin:
            build = partial(study_visit_body, session, visit.published, origin)
            scope = scope_of(visit.published)
    publish(session, settings, record_type, local_id, version, build, scope)


# --- what is out of step ---------------------------------------------------------------------


class Last(NamedTuple):
    """A record's last upsert or withdrawal in the feed."""

    record_type: str
    version: int
    op: str
    seq: int
    scope: str


@dataclass(frozen=True)
class Change:
    """A record the feed is not in step with, and what would bring it in step."""

    record_type: str
    local_id: uuid.UUID
    feed_id: str
    op: Literal["upsert", "withdraw"]
    version: int  # the record's current version (the feed's, for one no longer published)
    feed_version: int | None
    title: str | None


def last_entries(session: Session, origin: str) -> dict[str, Last]:
    """The last upsert or withdrawal of each of this origin's records, by feed record id: the
    grouped form of `feed.last_entry`, one query for the whole feed."""
    kept = FeedEntry.op.in_(("upsert", "withdraw"))  # a redaction changes neither
    own = FeedEntry.record_id.startswith(f"{origin}:", autoescape=True)
    newest = select(func.max(FeedEntry.seq)).where(kept, own).group_by(FeedEntry.record_id)
    rows = session.execute(
        select(
            FeedEntry.record_id,
            FeedEntry.record_type,
            FeedEntry.version,
            FeedEntry.op,
            FeedEntry.seq,
            FeedEntry.scope,
        ).where(FeedEntry.seq.in_(newest))
    )
    return {rid: Last(kind, version, op, seq, scope) for rid, kind, version, op, seq, scope in rows}


def out_of_step(session: Session, origin: str, *, everything: bool = False) -> list[Change]:
    """Published records missing from the feed, or there in an older version or with another
    scope (or all of them, `everything`), then records the feed still carries that are no
    longer published or whose scope is now `national` (they never leave the node)."""
    last = last_entries(session, origin)
    changes: list[Change] = []
    for record in published_records(session):
        rid = feed.record_id(origin, record.id)
        if record.scope == "national":
            continue  # left in `last`: withdrawn below if the feed still carries it
        entry = last.pop(rid, None)
        stale = (
            entry is None
            or entry.op != "upsert"
            or entry.version < record.version
            or entry.scope != record.scope
        )
        if stale or everything:
            changes.append(
                Change(
                    record.record_type,
                    record.id,
                    rid,
                    "upsert",
                    record.version,
                    entry.version if entry else None,
                    record.title,
                )
            )
    for rid, entry in sorted(last.items()):
        local_id = _local_id(rid)
        if entry.op == "upsert" and local_id is not None and entry.record_type in TOPICS:
            changes.append(
                Change(
                    entry.record_type,
                    local_id,
                    rid,
                    "withdraw",
                    entry.version,
                    entry.version,
                    None,
                )
            )
    return changes


def _local_id(rid: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(rid.partition(":")[2])
    except ValueError:
        return None


def signing_key_problem(
    session: Session, settings: Settings, *, raise_it: bool = False
) -> str | None:
    """Why this node cannot sign (no key, its file missing or unreadable), if it cannot:
    returned, or raised as `feed.FederationNotConfigured`."""
    try:
        feed.active_key(session, settings)
    except feed.FederationNotConfigured as exc:
        problem = str(exc)
    except (OSError, ValueError) as exc:
        problem = f"the signing key cannot be read: {type(exc).__name__}: {exc}"
    else:
        return None
    if raise_it:
        raise feed.FederationNotConfigured(problem)
    return problem


def open_holds(session: Session) -> dict[tuple[str, uuid.UUID, int], GateHold]:
    """The holds the review queue still holds, by record and version."""
    rows = session.scalars(select(GateHold).where(GateHold.status == "held"))
    return {(h.record_type, h.record_id, h.version): h for h in rows}


# --- bringing it in step -----------------------------------------------------------------------


@dataclass
class Outcome:
    appended: int = 0  # upserts appended
    withdrawn: int = 0  # tombstones appended
    held: int = 0  # versions the gate now holds
    unchanged: int = 0  # checked again (everything) and found in step
    failed: dict[str, str] = field(default_factory=dict)  # feed record id: error
    remaining: int = 0  # out of step, left for the next batch
    tried: set[str] = field(default_factory=set)  # feed record ids

    def add(self, other: "Outcome") -> None:
        self.appended += other.appended
        self.withdrawn += other.withdrawn
        self.held += other.held
        self.unchanged += other.unchanged
        self.failed |= other.failed
        self.remaining = other.remaining
        self.tried |= other.tried


def reconcile(
    session: Session,
    settings: Settings,
    *,
    everything: bool = False,
    limit: int = BATCH,
    skip: Collection[str] = (),
) -> Outcome:
    """Bring up to `limit` records out of step in step, each in its own savepoint (one failing
    stops none of the others), skipping the feed ids in `skip`. Versions the gate holds are left
    to the review queue. Raises `feed.FederationNotConfigured` with no country or signing key.
    Idempotent: a second run finds nothing to do."""
    origin = feed.origin_of(settings)
    signing_key_problem(session, settings, raise_it=True)  # say so once, not per record
    held = open_holds(session)
    todo = [
        c
        for c in out_of_step(session, origin, everything=everything)
        if c.feed_id not in skip and (c.record_type, c.local_id, c.version) not in held
    ]
    outcome = Outcome(remaining=max(0, len(todo) - limit))
    for change in todo[:limit]:
        outcome.tried.add(change.feed_id)
        before = feed.last_entry(session, change.feed_id)
        seq = before.seq if before else None
        try:
            with session.begin_nested():
                bring_in_step(session, settings, change.record_type, change.local_id)
        except Exception as exc:
            outcome.failed[change.feed_id] = f"{type(exc).__name__}: {exc}"[:2000]
            continue
        after = feed.last_entry(session, change.feed_id)
        if after is not None and after.seq != seq:
            outcome.withdrawn += after.op == "withdraw"
            outcome.appended += after.op == "upsert"
        elif change.op == "upsert" and (after is None or after.version < change.version):
            outcome.held += 1
        else:
            outcome.unchanged += 1
    if outcome.appended or outcome.withdrawn or outcome.held or outcome.failed:
        log.info("feed_reconciled", **_fields(outcome))
    return outcome


def reconcile_all(
    sessions: Callable[[], Session], settings: Settings, *, everything: bool = False
) -> Outcome:
    """`reconcile` batch after batch, each batch in its own transaction, until nothing is left;
    each record is tried once (one that fails is reported, not tried again and again)."""
    total = Outcome()
    while True:
        with sessions() as session:
            outcome = reconcile(session, settings, everything=everything, skip=total.tried)
            session.commit()
        total.add(outcome)
        if not outcome.remaining:
            return total


def _fields(outcome: Outcome) -> dict[str, object]:
    return {
        "appended": outcome.appended,
        "withdrawn": outcome.withdrawn,
        "held": outcome.held,
        "failed": len(outcome.failed),
    }


# --- status: what is not in the feed, and why ------------------------------------------------


class RecordStatus(BaseModel):
    """A record the feed is not in step with, and why."""

    record_type: str
    id: uuid.UUID
    feed_id: str
    title: str | None
    version: int
    feed_version: int | None
    change: Literal["append", "withdraw"]
    reason: Literal["held", "failed", "waiting"]
    detail: str
    job: int | None = None
    hold: int | None = None


class FailedJob(BaseModel):
    id: int
    topic: str
    entity_id: str
    attempts: int
    error: str | None


class FeedStatus(BaseModel):
    """Whether the feed is in step with what this node publishes."""

    in_step: bool
    problem: str | None  # what stops the whole feed (no signing key...), if anything
    published: int
    summary: dict[str, int]  # records not in step, by reason: held, failed, waiting
    records: list[RecordStatus]
    failed_jobs: list[FailedJob]  # every job that failed all its attempts, of any kind
    waiting_jobs: int


def status(session: Session, settings: Settings) -> FeedStatus:
    """Each record not in the feed at its current version (or still there though no longer
    published), with its reason; and the jobs that failed. Raises
    `feed.FederationNotConfigured` with no country."""
    origin = feed.origin_of(settings)
    problem = signing_key_problem(session, settings)
    jobs, holds = outbox.unfinished(session), open_holds(session)
    newest = {(m.topic, m.entity_id): m for m in jobs}  # oldest first: the newest wins
    records = [_why(change, holds, newest, problem) for change in out_of_step(session, origin)]
    summary = {reason: 0 for reason in ("held", "failed", "waiting")}
    for record in records:
        summary[record.reason] += 1
    failed = [m for m in jobs if outbox.state_of(m) == "failed"]
    return FeedStatus(
        in_step=not records and problem is None,
        problem=problem,
        published=len(published_records(session)),
        summary=summary,
        records=records,
        failed_jobs=[
            FailedJob(
                id=m.id,
                topic=m.topic,
                entity_id=m.entity_id,
                attempts=m.attempts,
                error=m.last_error,
            )
            for m in failed
        ],
        waiting_jobs=len(jobs) - len(failed),
    )


def _why(
    change: Change,
    holds: dict[tuple[str, uuid.UUID, int], GateHold],
    jobs: dict[tuple[str, str], OutboxMessage],
    problem: str | None,
) -> RecordStatus:
    record = RecordStatus(
        record_type=change.record_type,
        id=change.local_id,
        feed_id=change.feed_id,
        title=change.title,
        version=change.version,
        feed_version=change.feed_version,
        change="append" if change.op == "upsert" else "withdraw",
        reason="waiting",
        detail=problem or "not queued: the next reconciliation brings it in step",
    )
    hold = holds.get((change.record_type, change.local_id, change.version))
    if hold is not None and change.op == "upsert":
        found = "; ".join(f"{hit['detector']} in {hit['field']}" for hit in hold.hits)
        return record.model_copy(
            update={"reason": "held", "detail": found or "held for review", "hold": hold.id}
        )
    job = jobs.get((TOPICS[change.record_type], str(change.local_id)))
    if job is None:
        return record
    if outbox.state_of(job) == "failed":
        return record.model_copy(
            update={"reason": "failed", "detail": job.last_error or "failed", "job": job.id}
        )
    detail = "queued" + (f"; last attempt: {job.last_error}" if job.last_error else "")
    return record.model_copy(update={"detail": detail, "job": job.id})
