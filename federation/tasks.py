"""Outbox handlers that keep this node's feed in step with its published records.

A published record is projected (allow-list), scanned by the personal-data gate, and appended
as a signed upsert; one that is withdrawn or unpublished gets a signed tombstone. A gate hit
holds the record for review instead. Handlers are idempotent: an entry equal to the record's
last one is not appended again.
"""

import uuid
from collections.abc import Callable
from functools import partial
from typing import Any

from celery import shared_task
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from federation import feed
from federation.gate import Gate
from federation.models import GateHold
from federation.projection import SharedPractice, SharedStudyVisit
from node.core.db import create_sync_engine, utcnow
from node.core.models import User
from node.core.outbox import JobContext, handles
from node.core.settings import get_settings
from practices.models import Practice, StudyVisit
from practices.tasks import PRACTICE_CHANGED, STUDY_VISIT_CHANGED, locked_practice
from registry.models import ContactPoint, Organisation

PRACTICE_FIELDS = (
    "kind",
    "title",
    "original_title",
    "language",
    "summary",
    "description",
    "problem_addressed",
    "rationale",
    "country",
    "geographical_scope",
    "translations",
    "staffing",
    "intensity_duration",
    "resources_funding",
    "review_label",
    "sustainability",
    "transferability",
    "lessons_learned",
    "links",
    "licence",
)
PRACTICE_TERMS = {
    "intervention_types": "intervention_type",
    "process_focus": "process_focus",
    "settings": "setting",
    "target_groups": "target_group",
    "ideologies": "ideology",
}
VISIT_FIELDS = (
    "title",
    "language",
    "host_country",
    "purpose",
    "programme",
    "observations",
    "findings",
    "recommendations",
    "transferability",
    "addressed_to",
)


def people_of(session: Session) -> list[str]:
    """Everyone this node knows by name: contact points, users, study-visit participants."""
    names = [n for n in session.scalars(select(ContactPoint.name)) if n]
    names += list(session.scalars(select(User.name)))
    for participants in session.scalars(select(StudyVisit.participant_names)):
        names += [n for n in participants or [] if isinstance(n, str)]
    return names


def _bodies(session: Session, links: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ids = [uuid.UUID(str(link["organisation_id"])) for link in links if link.get("organisation_id")]
    known = {o.id: o for o in session.scalars(select(Organisation).where(Organisation.id.in_(ids)))}
    out = []
    for link in links:
        org = (
            known.get(uuid.UUID(str(link["organisation_id"])))
            if link.get("organisation_id")
            else None
        )
        body = {"name": org.name, "country": org.country} if org else {"name": link.get("name")}
        if link.get("role"):
            body["role"] = link["role"]
        out.append(body)
    return out


def practice_body(session: Session, practice: Practice) -> dict[str, Any]:
    values: dict[str, Any] = {name: getattr(practice, name) for name in PRACTICE_FIELDS}
    values |= {field: practice.terms_of(facet) for field, facet in PRACTICE_TERMS.items()}
    values["organisations"] = _bodies(
        session,
        [
            {"organisation_id": o.organisation_id, "name": o.name, "role": o.role}
            for o in practice.organisations
        ],
    )
    values["evaluation"] = {"type": practice.evaluation_type, "outcomes": practice.outcomes}
    for name in ("start_date", "end_date"):
        value = getattr(practice, name)
        values[name] = value.isoformat() if value else None
    return SharedPractice.model_validate(values).model_dump(mode="json", exclude_none=True)


def study_visit_body(session: Session, visit: StudyVisit, origin: str) -> dict[str, Any]:
    values: dict[str, Any] = {name: getattr(visit, name) for name in VISIT_FIELDS}
    values["organising_authority"] = _bodies(session, [visit.organising_authority])[0]
    values["host_organisations"] = _bodies(session, visit.host_organisations)
    values["delegation"] = [
        {"profession": m["profession"], "count": m["count"]}
        | (
            {"home_organisation": _bodies(session, [m["home_organisation"]])[0]}
            if m.get("home_organisation")
            else {}
        )
        for m in visit.delegation
    ]
    values["observed_practices"] = [feed.record_id(origin, i) for i in visit.observed_practice_ids]
    values["start_date"] = visit.start_date.isoformat()
    values["end_date"] = visit.end_date.isoformat()
    return SharedStudyVisit.model_validate(values).model_dump(mode="json", exclude_none=True)


@handles(PRACTICE_CHANGED)
def feed_practice(session: Session, entity_id: str, context: JobContext) -> None:
    practice = locked_practice(session, uuid.UUID(entity_id))
    body = None
    if practice is not None and practice.status == "published":
        body = partial(practice_body, session, practice)
    version = practice.version if practice else 0
    _publish(session, context, "practice", uuid.UUID(entity_id), version, body)


@handles(STUDY_VISIT_CHANGED)
def feed_study_visit(session: Session, entity_id: str, context: JobContext) -> None:
    visit = session.get(
        StudyVisit, uuid.UUID(entity_id), with_for_update=True, populate_existing=True
    )
    origin = context.settings.country if context.settings else None
    body = None
    if visit is not None and visit.status == "published" and origin:
        body = partial(study_visit_body, session, visit, origin)
    version = visit.version if visit else 0
    _publish(session, context, "study_visit", uuid.UUID(entity_id), version, body)


def _publish(
    session: Session,
    context: JobContext,
    record_type: str,
    local_id: uuid.UUID,
    version: int,
    build: Callable[[], dict[str, Any]] | None,
) -> None:
    settings = context.settings
    if settings is None or not settings.country:
        return  # federation is not set up on this node: nothing travels
    origin = settings.country
    rid = feed.record_id(origin, local_id)
    key = feed.active_key(session, settings)
    if build is None:
        last = feed.last_entry(session, rid)
        if last is not None and last.op == "upsert":
            feed.append(
                session,
                key,
                origin=origin,
                record_type=record_type,
                rid=rid,
                version=version,
                op="withdraw",
                body=None,
            )
        _resolve_holds(session, record_type, local_id, "superseded")
        return
    body = build()
    hits = Gate.for_people(people_of(session), home_region=origin).scan(body)
    if hits and not _released(session, record_type, local_id, version):
        _hold(session, record_type, local_id, version, hits)
        return
    feed.append(
        session,
        key,
        origin=origin,
        record_type=record_type,
        rid=rid,
        version=version,
        op="upsert",
        body=body,
    )
    _resolve_holds(session, record_type, local_id, "superseded", below=version)


def _hold(
    session: Session, record_type: str, local_id: uuid.UUID, version: int, hits: list[Any]
) -> None:
    existing = session.scalar(
        select(GateHold).where(
            GateHold.record_type == record_type,
            GateHold.record_id == local_id,
            GateHold.version == version,
        )
    )
    described = [
        {"detector": h.detector, "field": h.field, "start": h.start, "end": h.end} for h in hits
    ]
    if existing is None:
        session.add(
            GateHold(record_type=record_type, record_id=local_id, version=version, hits=described)
        )
    _resolve_holds(session, record_type, local_id, "superseded", below=version)


def _released(session: Session, record_type: str, local_id: uuid.UUID, version: int) -> bool:
    return (
        session.scalar(
            select(GateHold.id).where(
                GateHold.record_type == record_type,
                GateHold.record_id == local_id,
                GateHold.version == version,
                GateHold.status == "released",
            )
        )
        is not None
    )


def _resolve_holds(
    session: Session, record_type: str, local_id: uuid.UUID, status: str, below: int | None = None
) -> None:
    stmt = update(GateHold).where(
        GateHold.record_type == record_type,
        GateHold.record_id == local_id,
        GateHold.status == "held",
    )
    if below is not None:
        stmt = stmt.where(GateHold.version < below)
    session.execute(stmt.values(status=status, resolved_at=utcnow()))


# --- periodic pulls, run by the Celery worker (node.worker) -------------------------------

PULL_EXPIRES = 60  # seconds; beat queues the due peers again every 10
# A hub pulls its nodes; a node pulls the hub it mirrors (nothing is due without one).
SCHEDULE: dict[str, dict[str, Any]] = {
    "hub-pull": {"task": "integra.hub.pull", "schedule": 10.0},
}


@shared_task(name="integra.hub.pull")  # type: ignore[untyped-decorator]
def pull_nodes() -> list[int]:
    """Queue a pull of every due peer (a hub its nodes, a node the hub it mirrors; each peer's
    own backoff decides which are due): the worker pool runs them side by side."""
    from federation.hub import due_peers

    engine = create_sync_engine(get_settings().sqlalchemy_url)
    try:
        with Session(engine) as session:
            due = [peer.id for peer in due_peers(session)]
    finally:
        engine.dispose()
    for peer_id in due:  # a copy the workers did not reach before the next beat is dropped
        pull_peer.apply_async((peer_id,), expires=PULL_EXPIRES)
    return due


# Past the job's own limit (federation.hub.JOB_TIMEOUT, 10 minutes), which records a failure
# with backoff: these limits only stop a task stuck outside the job's checks.
@shared_task(name="integra.hub.pull_peer", soft_time_limit=660, time_limit=720)  # type: ignore[untyped-decorator]
def pull_peer(peer_id: int) -> str:
    """Pull one peer, then let the search index catch up. A peer already being pulled by
    another worker (a slow round outlasting the beat) is left to it."""
    from federation.hub import catch_up_index, sync_one
    from practices.search import make_backend

    settings = get_settings()
    engine = create_sync_engine(settings.sqlalchemy_url)
    sessions = lambda: Session(engine)  # noqa: E731
    try:
        result = sync_one(sessions, peer_id, interval=settings.hub_sync_interval, settings=settings)
        catch_up_index(sessions, make_backend(settings))
    finally:
        engine.dispose()
    return "being pulled by another worker" if result is None else str(result)
