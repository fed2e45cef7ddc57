"""What of a published record goes into this node's feed, and how it gets there.

A published record is projected onto its shared model (projection.py, the one allow-list),
scanned by the personal-data gate, and appended as a signed upsert; a record that is withdrawn
or unpublished gets a signed tombstone. A gate hit holds the record for review instead.
Idempotent: an entry equal to the record's last one is not appended again.
"""

import uuid
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from federation import feed, holds, keys, repository
from federation.gate import Gate, name_of_address
from federation.projection import SharedNeedsSummary, SharedPractice, SharedStudyVisit
from node.core.models import User
from node.core.outbox import JobContext, handles, on_sweep
from node.core.settings import Settings
from practices import participant_names
from practices.needs import NEEDS_CHANGED, shareable_cells
from registry import people_names, public_organisations

# The shared fields whose values are not a record's attribute of the same name, but built
# below. Every other field of the shared models is copied from the attribute it names.
# The finding of a hold whose body the federation schema refuses (no detector fired).
NOT_SHAREABLE = "not shareable"
PRACTICE_TERMS = {
    "intervention_types": "intervention_type",
    "process_focus": "process_focus",
    "settings": "setting",
    "target_groups": "target_group",
    "ideologies": "ideology",
}
PRACTICE_BUILT = {*PRACTICE_TERMS, "organisations", "evaluation", "start_date", "end_date"}
VISIT_BUILT = {
    "organising_authority",
    "host_organisations",
    "delegation",
    "observed_practices",
    "start_date",
    "end_date",
    "recommendation_items",
}


def copied_fields(model: type[Any], built: set[str]) -> tuple[str, ...]:
    """The fields of a shared model copied as they are: all those it allows but `built`."""
    return tuple(name for name in model.model_fields if name not in built)


PRACTICE_FIELDS = copied_fields(SharedPractice, PRACTICE_BUILT)
VISIT_FIELDS = copied_fields(SharedStudyVisit, VISIT_BUILT)

# Builds a record's shared body: called only once the record is known to travel.
BodyBuilder = Callable[[], dict[str, Any]]


def people_of(session: Session) -> list[str]:
    """Everyone this node knows by name: contact points, users (also by the name their e-mail
    address spells, "jean.dupont@…"), study-visit participants."""
    spelt = map(name_of_address, session.scalars(select(User.email)))
    return [
        *people_names(session),
        *repository.user_names(session),
        *(name for name in spelt if name),
        *participant_names(session),
    ]


def organisation_bodies(session: Session, links: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Organisations as a shared record names them: a registry organisation by its public name
    and country, any other by the name the record gives it; each with its role, if any."""
    ids = [uuid.UUID(str(link["organisation_id"])) for link in links if link.get("organisation_id")]
    known = public_organisations(session, ids)
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


def practice_body(session: Session, practice: Any) -> dict[str, Any]:
    """A published practice (from `practices.published_practice`) as the feed shares it."""
    values: dict[str, Any] = {name: getattr(practice, name) for name in PRACTICE_FIELDS}
    values |= {field: practice.terms_of(facet) for field, facet in PRACTICE_TERMS.items()}
    values["organisations"] = organisation_bodies(
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


def study_visit_body(session: Session, visit: Any, origin: str) -> dict[str, Any]:
    """A published study-visit report (from `practices.published_visit`) as the feed shares
    it: the delegation as professions and counts, observed practices as feed record ids."""
    values: dict[str, Any] = {name: getattr(visit, name) for name in VISIT_FIELDS}
    values["organising_authority"] = organisation_bodies(session, [visit.organising_authority])[0]
    values["host_organisations"] = organisation_bodies(session, visit.host_organisations)
    values["delegation"] = [delegation_group(session, member) for member in visit.delegation]
    values["observed_practices"] = [feed.record_id(origin, i) for i in visit.observed_practice_ids]
    values["start_date"] = visit.start_date.isoformat()
    values["end_date"] = visit.end_date.isoformat()
    values["recommendation_items"] = recommendation_bodies(session, visit.recommendation_items)
    return SharedStudyVisit.model_validate(values).model_dump(mode="json", exclude_none=True)


def recommendation_bodies(session: Session, items: list[Any]) -> list[dict[str, Any]]:
    """A report's recommendations as the feed shares them: the text, the addressees by public
    name and country (or the EU level), the status and the days of its steps; the notes of the
    steps, and whoever wrote them, stay on the node."""
    known = public_organisations(session, {o for item in items for o in item.organisation_ids})
    out = []
    for item in items:
        addressees: list[dict[str, Any]] = [
            {"name": known[o].name, "country": known[o].country}
            for o in item.organisation_ids
            if o in known
        ]
        if item.eu_level:
            addressees.append({"name": "EU level", "country": "EU"})
        out.append(
            {
                "text": item.text,
                "addressees": addressees,
                "status": item.status,
                "status_date": item.status_date.isoformat() if item.status_date else None,
                "history": [{"status": h["status"], "date": h["date"]} for h in item.history],
            }
        )
    return out


def delegation_group(session: Session, member: dict[str, Any]) -> dict[str, Any]:
    group = {"profession": member["profession"], "count": member["count"]}
    if member.get("home_organisation"):
        group["home_organisation"] = organisation_bodies(session, [member["home_organisation"]])[0]
    return group


def unshareable(error: ValidationError) -> list[dict[str, Any]]:
    """A hold's findings for a body the federation schema refuses: one per field at fault."""
    return holds.refused(NOT_SHAREABLE, error.errors())


# A record about to be published, as the practice database hands it over: its type and the
# record itself (a practice or a study-visit report, its version flushed).
Publishing = tuple[str, Any]
# The gate's findings for each record (none: it travels), computed off the event loop.
Scan = Callable[[], list[list[dict[str, Any]]]]


def verdicts(session: Session, settings: Settings, records: Sequence[Publishing]) -> Scan:
    """What the gate will hold of each record being published, said to its publisher: the
    findings as the review queue will show them. The database is read now (projection, people,
    releases); the scan is the returned function's, to run off the event loop. The outbox job
    that later brings the feed in step runs the same projection and gate on the same committed
    record, so it holds what this says."""
    origin = settings.country or ""
    bodies: list[dict[str, Any] | None] = []
    found: list[list[dict[str, Any]]] = []
    for record_type, record in records:
        body, refusal = None, []
        if scope_of(record) == "national":  # it never enters the feed: nothing to hold
            bodies.append(None)
            found.append([])
            continue
        try:
            body = shared_body(session, record_type, record, origin)
        except ValidationError as exc:
            refusal = unshareable(exc)
        if body is not None and holds.is_released(session, record_type, record.id, record.version):
            body = None
        bodies.append(body)
        found.append(refusal)
    if not any(body is not None for body in bodies):
        return lambda: found
    gate = Gate.for_people(people_of(session), home_region=origin)

    def scan() -> list[list[dict[str, Any]]]:
        return [
            holds.described(body, gate.scan(body)) if body is not None else refusal
            for body, refusal in zip(bodies, found, strict=True)
        ]

    return scan


def scope_of(record: Any) -> str:
    """A record's sharing scope (`public` for one from before scopes)."""
    scope = getattr(record, "scope", None)
    return scope if scope in feed.SCOPES else "public"


def shared_body(session: Session, record_type: str, record: Any, origin: str) -> dict[str, Any]:
    """A published record's shared body, as the feed's handler builds it."""
    if record_type == "practice":
        return practice_body(session, record)
    return study_visit_body(session, record, origin)


def publish(
    session: Session,
    settings: Settings | None,
    record_type: str,
    local_id: uuid.UUID,
    version: int,
    build: BodyBuilder | None,
    scope: str = "public",
) -> None:
    """Bring the feed in step with a record: append its body, with its `scope`, if `build` is
    given and the gate finds nothing (or the version was released), hold it if the gate finds
    something, and append a tombstone if `build` is None (the record is no longer published)
    or its scope is `national` (it never leaves the node)."""
    if settings is None or not settings.country:
        return  # federation is not set up on this node: nothing travels
    origin = settings.country
    rid = feed.record_id(origin, local_id)
    key = feed.active_key(session, settings)
    if build is None or scope == "national":
        withdraw(session, key, origin, record_type, rid, version)
        holds.supersede(session, record_type, local_id)
        return
    try:
        body = build()
    except ValidationError as exc:
        # Text the federation would refuse (markup, invisible controls, a link that is not
        # http(s)...): held for the editor to fix, with the fields, instead of failing the job
        # again and again while the record silently never travels.
        holds.hold(session, record_type, local_id, version, unshareable(exc))
        return
    hits = Gate.for_people(people_of(session), home_region=origin).scan(body)
    if hits and not holds.is_released(session, record_type, local_id, version):
        holds.hold(session, record_type, local_id, version, holds.described(body, hits))
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
        scope=scope,
    )
    holds.supersede(session, record_type, local_id, below=version)


def withdraw(
    session: Session, key: keys.SigningKey, origin: str, record_type: str, rid: str, version: int
) -> None:
    """A tombstone for a record whose last entry is an upsert (none if it never travelled or
    was withdrawn already)."""
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


# --- needs heard: a node's needs as counts, one shared record (issue 17 item 5) ---------------

NEEDS_SUMMARY = "needs_summary"
NEEDS_SUMMARY_ID = "needs-summary"  # its local id: one record per node, a new version per change
# A count travels only when needs of at least this many organisations make it up: the text and
# the organisation never travel, and a count made of one or two organisations' needs (in a
# country with one juvenile prison, "training for juveniles") would say whose need it is.
NEEDS_MIN_ORGANISATIONS = 3


def needs_summary_body(session: Session) -> dict[str, Any]:
    """This node's needs as the feed shares them: counts by kind and by kind and term, each of
    needs of at least `NEEDS_MIN_ORGANISATIONS` organisations, without text."""
    counts = [
        {"kind": c.kind, "facet": c.facet, "term": c.term, "open": c.open, "addressed": c.addressed}
        for c in shareable_cells(session)
        if c.organisations >= NEEDS_MIN_ORGANISATIONS
    ]
    body = {"min_organisations": NEEDS_MIN_ORGANISATIONS, "counts": counts}
    return SharedNeedsSummary.model_validate(body).model_dump(mode="json", exclude_none=True)


def publish_needs_summary(session: Session, settings: Settings | None) -> bool:
    """Append this node's needs summary when its counts changed, signed, of scope `public`
    (figures of several organisations, with no text: what the seed's own survey published);
    nothing while nothing was ever counted. Whether an entry was appended. Raises
    `feed.FederationNotConfigured` without a signing key."""
    if settings is None or not settings.country or settings.role == "hub":
        return False
    origin = settings.country
    rid = feed.record_id(origin, NEEDS_SUMMARY_ID)
    body = needs_summary_body(session)
    last = feed.last_entry(session, rid)
    if last is None and not body["counts"]:
        return False
    entry = feed.append(
        session,
        feed.active_key(session, settings),
        origin=origin,
        record_type=NEEDS_SUMMARY,
        rid=rid,
        version=last.version + 1 if last is not None else 1,
        op="upsert",
        body=body,
        scope="public",
    )
    return entry is not None


@handles(NEEDS_CHANGED)
def feed_needs_summary(session: Session, entity_id: str, context: JobContext) -> None:
    """A need changed: the shared counts follow (without a signing key yet, the sweep that
    runs once there is one brings them)."""
    with suppress(feed.FederationNotConfigured):
        publish_needs_summary(session, context.settings)


@on_sweep
def sweep_needs_summary(session: Session, context: JobContext) -> None:
    """At start and on every sweep: the shared counts catch up with what a job could not do."""
    with suppress(feed.FederationNotConfigured):
        publish_needs_summary(session, context.settings)
