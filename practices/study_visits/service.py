"""The rules of study-visit reports: who sees and writes them, and their review workflow
(draft → submitted → changes requested or published)."""

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from node.core import audit, outbox
from node.core.auth import Principal
from node.core.db import utcnow
from node.core.errors import Conflict, Forbidden, InvalidInput, NotFound, check_version
from node.core.schemas import given
from node.core.settings import Settings
from practices import repository as practices
from practices.schemas import Scope, check_dates
from practices.service import (
    ERASED_TITLE,
    check_confirmed,
    check_links,
    check_scope,
    confirmation,
    scope_detail,
)
from practices.study_visits import recommendations, repository
from practices.study_visits.models import StudyVisit, StudyVisitComment
from practices.study_visits.schemas import StudyVisitCreate, StudyVisitRead, StudyVisitUpdate
from practices.tasks import STUDY_VISIT_CHANGED, STUDY_VISIT_LEAKED

VISIT_TRANSITIONS = {
    # action: (from, to, who) — who: "author" or "admin"
    "submit": (("draft", "changes_requested"), "submitted", "author"),
    "request-changes": (("submitted",), "changes_requested", "admin"),
    "publish": (("submitted",), "published", "admin"),
}


def _is_author(by: Principal, visit: StudyVisit) -> bool:
    return by.user_id is not None and visit.author_id == by.user_id


async def get_study_visit(
    session: AsyncSession, visit_id: uuid.UUID, *, by: Principal, audited: bool = True
) -> StudyVisit:
    visit = await repository.get_study_visit(session, visit_id)
    if visit is None or not (visit.status == "published" or by.is_admin or _is_author(by, visit)):
        raise NotFound(f"No study-visit report with id {visit_id}.")
    if audited:  # the report names its participants: personal data
        audit.record(session, by, action="read", entity_type="study_visit", entity_id=visit.id)
    return visit


async def study_visit_read(
    session: AsyncSession, visit: StudyVisit, *, by: Principal | None
) -> StudyVisitRead:
    """``by`` None: an export by the operator. Review comments are between the author and the
    National Point: others (and exports) see none."""
    values = {
        k: getattr(visit, k)
        for k in StudyVisitRead.model_fields
        if k not in ("comments", "recommendation_items")
    }
    values["recommendation_items"] = await recommendations.reads_of(session, visit)
    if by is None or not (by.is_admin or _is_author(by, visit)):
        return StudyVisitRead.model_validate(values | {"comments": []})
    comments = await repository.comments_of(session, visit.id)
    values["comments"] = [
        {"author": c.author_label, "action": c.action, "body": c.body, "created_at": c.created_at}
        for c in comments
    ]
    return StudyVisitRead.model_validate(values)


async def _check_visit_refs(
    session: AsyncSession, data: StudyVisitCreate | StudyVisitUpdate
) -> None:
    if data.organising_authority is not None:
        await check_links(session, [data.organising_authority], "organising_authority")
    if data.host_organisations is not None:
        await check_links(session, data.host_organisations, "host_organisations")
    if data.delegation is not None:
        for index, member in enumerate(data.delegation):
            if member.home_organisation is not None:
                await check_links(
                    session, [member.home_organisation], f"delegation.{index}.home_organisation"
                )
    if data.observed_practice_ids:
        found = await practices.existing_practice_ids(session, data.observed_practice_ids)
        for index, practice_id in enumerate(data.observed_practice_ids):
            if practice_id not in found:
                raise InvalidInput(
                    f"observed_practice_ids.{index}", f"no practice with id {practice_id}"
                )
    if data.recommendation_items:
        await recommendations.check_items(session, data.recommendation_items)


async def create_study_visit(
    session: AsyncSession,
    data: StudyVisitCreate,
    *,
    by: Principal,
    is_sample: bool = False,
    status: str = "draft",
    author_id: uuid.UUID | None = None,
) -> StudyVisit:
    """A new report, authored by the caller (an import may name another author)."""
    check_scope(by, Scope.network, data.scope, "study-visit report")
    await _check_visit_refs(session, data)
    if data.ref and await repository.ref_owner(session, data.ref):
        raise Conflict(f"The ref '{data.ref}' is already used by another report.")
    values = data.model_dump(
        mode="json", exclude={"start_date", "end_date", "recommendation_items"}
    )
    visit = StudyVisit(
        author_id=author_id or by.user_id,
        is_sample=is_sample,
        status=status,
        start_date=data.start_date,
        end_date=data.end_date,
        **values,
    )
    visit.recommendation_items = []  # a new report's collection, loaded (async: never lazily)
    recommendations.set_items(visit, data.recommendation_items)
    if status in ("submitted", "published"):
        visit.submitted_at = utcnow()
    if status == "published":
        visit.published_at = utcnow()
    session.add(visit)
    await session.flush()
    if status == "published":
        recommendations.queue_notices(session, visit, ())
    audit.record(session, by, action="create", entity_type="study_visit", entity_id=visit.id)
    return visit


async def update_study_visit(
    session: AsyncSession,
    visit_id: uuid.UUID,
    data: StudyVisitUpdate,
    *,
    expected_version: int,
    by: Principal,
) -> StudyVisit:
    visit = await get_study_visit(session, visit_id, by=by, audited=False)
    if not by.is_admin and not (
        _is_author(by, visit) and visit.status in ("draft", "changes_requested")
    ):
        raise Forbidden("Only the author changes a report, and only before it is submitted.")
    check_version(expected_version, visit.version, "report")
    check_scope(by, visit.scope, data.scope, "study-visit report")
    await _check_visit_refs(session, data)
    values = given(data, mode="json")
    python = given(data)
    values.pop("recommendation_items", None)
    for name in ("start_date", "end_date"):
        if name in values:
            values[name] = python[name]
    try:
        check_dates(
            values.get("start_date", visit.start_date), values.get("end_date", visit.end_date)
        )
    except ValueError as exc:
        raise InvalidInput("end_date", str(exc)) from None
    changed = [k for k, v in values.items() if getattr(visit, k) != v]
    scope = scope_detail(visit.scope, values["scope"]) if "scope" in changed else {}
    for name in changed:
        setattr(visit, name, values[name])
    if data.recommendation_items is not None and recommendations.set_items(
        visit, data.recommendation_items
    ):
        changed.append("recommendation_items")
        if visit.status == "published":  # a new addressee is told too
            recommendations.queue_notices(
                session, visit, await recommendations.notified(session, visit.id)
            )
    if changed:
        visit.updated_at = utcnow()
        await session.flush()
        if visit.status == "published":
            outbox.enqueue(session, STUDY_VISIT_CHANGED, visit.id)
        audit.record(
            session,
            by,
            action="update",
            entity_type="study_visit",
            entity_id=visit.id,
            detail={"fields": changed, "version": visit.version} | scope,
        )
    return visit


async def change_study_visit_scope(
    session: AsyncSession,
    visit_id: uuid.UUID,
    scope: Scope,
    *,
    by: Principal,
    expected_version: int | None = None,
    reason: str | None = None,
) -> StudyVisit:
    """The National Point sets who may see a report, audited (old → new); a published one
    gets a new version and the feed follows (`practices.service.change_practice_scope`)."""
    if not by.is_admin:
        raise Forbidden("Only the National Point's administrators change a record's scope.")
    visit = await get_study_visit(session, visit_id, by=by, audited=False)
    if expected_version is not None:
        check_version(expected_version, visit.version, "report")
    old = visit.scope
    if old == scope:
        return visit
    visit.scope = str(scope)
    visit.updated_at = utcnow()
    await session.flush()
    if visit.status == "published":
        outbox.enqueue(session, STUDY_VISIT_CHANGED, visit.id)
    audit.record(
        session,
        by,
        action="scope",
        entity_type="study_visit",
        entity_id=visit.id,
        detail={"version": visit.version, "status": visit.status}
        | scope_detail(old, str(scope), reason),
    )
    return visit


async def transition_study_visit(
    session: AsyncSession,
    visit_id: uuid.UUID,
    action: str,
    *,
    expected_version: int,
    by: Principal,
    comment: str | None = None,
    settings: Settings | None = None,
    confirmed: bool = False,
) -> StudyVisit:
    """On a node that federates (`settings.country`), a publish needs `confirmed`: the
    publisher's word that the free text names no person the node cannot know."""
    visit = await get_study_visit(session, visit_id, by=by, audited=False)
    allowed_from, target, who = VISIT_TRANSITIONS[action]
    if who == "admin" and not by.is_admin:
        raise Forbidden("The National Point reviews and publishes reports.")
    if who == "author" and not (_is_author(by, visit) or by.is_admin):
        raise Forbidden("Only the author submits a report.")
    check_version(expected_version, visit.version, "report")
    if visit.status not in allowed_from:
        raise Conflict(f"A report that is {visit.status} cannot be sent to {target}.")
    if action == "request-changes" and not comment:
        raise InvalidInput("comment", "say what should change")
    if action == "submit" and not visit.delegation:
        raise InvalidInput("delegation", "name at least one profession of the delegation")
    detail: dict[str, Any] = {}
    if action == "publish":
        check_confirmed(settings, confirmed)
        detail = confirmation(confirmed)
    visit.status = target
    now = utcnow()
    if target == "submitted":
        visit.submitted_at = now
    if target == "published":
        visit.published_at = now
        outbox.enqueue(session, STUDY_VISIT_CHANGED, visit.id)
        recommendations.mark_received(visit)
        recommendations.queue_notices(
            session, visit, await recommendations.notified(session, visit.id)
        )
    visit.updated_at = now
    if comment:
        add_comment(session, visit, by, comment, action)
    await session.flush()
    audit.record(
        session,
        by,
        action=action,
        entity_type="study_visit",
        entity_id=visit.id,
        detail={"version": visit.version, "status": visit.status} | detail,
    )
    return visit


def add_comment(
    session: AsyncSession, visit: StudyVisit, by: Principal, body: str, action: str = "comment"
) -> None:
    session.add(
        StudyVisitComment(
            study_visit_id=visit.id,
            author_id=by.user_id,
            author_label=by.label,
            body=body,
            action=action,
            created_at=utcnow(),
        )
    )


async def comment_study_visit(
    session: AsyncSession, visit_id: uuid.UUID, body: str, *, by: Principal
) -> StudyVisit:
    visit = await get_study_visit(session, visit_id, by=by, audited=False)
    if not (by.is_admin or _is_author(by, visit)):
        raise Forbidden("Review comments are between the author and the National Point.")
    add_comment(session, visit, by, body)
    await session.flush()
    audit.record(session, by, action="comment", entity_type="study_visit", entity_id=visit.id)
    return visit


async def withdraw_study_visit(
    session: AsyncSession,
    visit_id: uuid.UUID,
    reason: str,
    *,
    expected_version: int,
    by: Principal,
    personal_data: bool = False,
) -> StudyVisit:
    """Withdraw a published report (the National Point), with the reason shown with it: it
    leaves the lists of other users, and the federation sends a signed tombstone to the hub
    and every mirror. For `personal_data` (the report named someone), its free text is
    erased here too, and the federation purges every earlier body of it wherever it
    travelled, as for a practice."""
    if not by.is_admin:
        raise Forbidden("Only the National Point's administrators withdraw reports.")
    visit = await get_study_visit(session, visit_id, by=by, audited=False)
    check_version(expected_version, visit.version, "report")
    if visit.status != "published":
        raise Conflict(f"A {visit.status} report cannot be withdrawn: only a published one.")
    detail: dict[str, Any] = {"reason": reason}
    if personal_data:  # no word of what leaked is kept, in the audit log either
        detail = {"reason_code": "personal_data", "erased": await erase_free_text(session, visit)}
    visit.status = "withdrawn"
    visit.withdrawn_reason = reason
    visit.updated_at = utcnow()
    await session.flush()
    outbox.enqueue(session, STUDY_VISIT_CHANGED, visit.id)
    if personal_data:  # after the change's own work (the feed's tombstone, the index)
        outbox.enqueue(session, STUDY_VISIT_LEAKED, visit.id)
    audit.record(
        session,
        by,
        action="withdraw",
        entity_type="study_visit",
        entity_id=visit.id,
        detail={"version": visit.version, "status": visit.status, **detail},
    )
    return visit


VISIT_FREE_TEXT = (
    "purpose",
    "programme",
    "observations",
    "findings",
    "recommendations",
    "transferability",
)


async def erase_free_text(session: AsyncSession, visit: StudyVisit) -> list[str]:
    """Erase a report's free text (its title and purpose replaced by a marker, the rest and
    its participants emptied, its recommendations' words and notes replaced), and return
    the fields erased."""
    for name in VISIT_FREE_TEXT:
        setattr(visit, name, None)
    visit.title, visit.purpose = ERASED_TITLE, ERASED_TITLE
    visit.participant_names = []
    items = await recommendations.erase_text(session, visit.id, ERASED_TITLE)
    return [
        "title",
        *VISIT_FREE_TEXT,
        "participant_names",
        *(["recommendation_items"] if items else []),
    ]
