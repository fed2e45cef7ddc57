"""The practice database's rules: who may write what, and the publication workflows."""

import asyncio
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

import registry
from node.core import audit, outbox
from node.core.auth import Principal, UserRole
from node.core.db import sync_collection, utcnow
from node.core.errors import Conflict, Forbidden, InvalidInput, NotFound, check_version
from node.core.schemas import given
from node.core.settings import Settings
from practices import repository
from practices.models import Practice, PracticeOrganisation, PracticeTerm
from practices.schemas import (
    SCOPE_WIDTH,
    GateFinding,
    OrganisationLink,
    PracticeCreate,
    PracticeRead,
    PracticeUpdate,
    Scope,
    check_dates,
)
from practices.tasks import PRACTICE_CHANGED, PRACTICE_CORRECTED, PRACTICE_LEAKED

TERM_FIELDS = {
    "intervention_types": "intervention_type",
    "process_focus": "process_focus",
    "settings": "setting",
    "target_groups": "target_group",
    "ideologies": "ideology",
}
EDITABLE_BY_EDITORS = ("draft", "in_review")


async def check_links(session: AsyncSession, links: list[OrganisationLink], field: str) -> None:
    """Every organisation a record links to by id is in the registry."""
    for index, link in enumerate(links):
        if link.organisation_id and not await registry.organisation_exists(
            session, link.organisation_id
        ):
            raise InvalidInput(
                f"{field}.{index}.organisation_id",
                f"no organisation with id {link.organisation_id}",
            )


# --- publishing: the publisher's confirmation, and what the personal-data gate says -------

CONFIRM = "confirm_no_person"
UNCONFIRMED = (
    "confirm that the free text names no person this node cannot know: the personal-data gate "
    "finds the people the node knows (contact points, users, participants), numbers, addresses "
    "and the like, not an offender or a victim it has never heard of. Read the texts, then "
    'publish again with {"confirm_no_person": true}'
)

# The federation's gate, handed to the practice database by the composition root (it may not
# import the federation): given a job-like session, the settings and the records about to be
# published, it reads what it needs and returns the scan, which finds for each record what
# would keep it from the feed (`federation.publish.verdicts`).
GateCheck = Callable[
    [Session, Settings, Sequence[tuple[str, Any]]], Callable[[], list[list[dict[str, Any]]]]
]
_gate_check: GateCheck | None = None


def set_gate_check(check: GateCheck) -> None:
    """Register the federation's gate (the composition root does, beside the outbox's)."""
    global _gate_check
    _gate_check = check


def federates(settings: Settings | None) -> bool:
    return settings is not None and bool(settings.country)


def check_confirmed(settings: Settings | None, confirmed: bool) -> None:
    """On a node that federates, a publish needs the publisher's confirmation."""
    if federates(settings) and not confirmed:
        raise InvalidInput(CONFIRM, UNCONFIRMED)


def confirmation(confirmed: bool) -> dict[str, Any]:
    """What an audit entry of a publish records of the confirmation (its actor and time are
    the entry's own)."""
    return {"confirmed_no_person": True} if confirmed else {}


async def gate_verdicts(
    session: AsyncSession, settings: Settings | None, records: Sequence[tuple[str, Any]]
) -> list[list[GateFinding]]:
    """What the gate will hold of each record being published (`practice` or `study_visit`,
    flushed): said to the publisher now, held by the feed's job after the commit. A practice
    is marked held (or not) at once, as the job will mark it: anonymous readers never see a
    held version meanwhile."""
    if settings is None or not settings.country or not records:
        return [[] for _ in records]
    check = _gate_check
    if check is None:  # said rather than skipped: a silent pass would hide the holds
        raise RuntimeError("the personal-data gate is not registered: import node.worker first")
    scan = await session.run_sync(lambda sync: check(sync, settings, records))
    found = await asyncio.to_thread(scan)  # the scan is CPU only: off the event loop
    for (kind, record), findings in zip(records, found, strict=True):
        if kind == "practice":
            await session.run_sync(repository.set_held, record.id, bool(findings))
    return [[GateFinding.model_validate(f) for f in findings] for findings in found]


# --- practices ----------------------------------------------------------------------------


def _owns(by: Principal, links: list[tuple[uuid.UUID | None, str]]) -> bool:
    """An editor's record is one where an organisation of theirs is the responsible body."""
    return by.role == UserRole.editor and any(
        org_id is not None and role == "responsible" and by.may_edit(org_id)
        for org_id, role in links
    )


def _links_of(practice: Practice) -> list[tuple[uuid.UUID | None, str]]:
    return [(o.organisation_id, o.role) for o in practice.organisations]


def _may_edit(by: Principal, practice: Practice) -> bool:
    if by.is_admin:
        return True
    # A held record is fixed by its editors: the personal-data gate scans the new version.
    editable = practice.status in EDITABLE_BY_EDITORS or practice.held
    return editable and _owns(by, _links_of(practice))


def visible_to(by: Principal, practice: Practice) -> bool:
    """Anonymous visitors see published `public` records the personal-data gate does not
    hold; signed-in users (and the operator at the node's console) see every record (`network`
    and `national` ones too)."""
    return (
        by.is_signed_in
        or by.is_admin
        or (practice.status == "published" and not practice.held and practice.scope == "public")
    )


# --- sharing scope --------------------------------------------------------------------------


def check_scope(by: Principal, current: str, wanted: object, what: str) -> None:
    """Editors (and authors) keep or narrow a record's scope; only the National Point widens
    it (a new record starts from its kind's default: `public` for a practice, `network` for a
    study-visit report)."""
    if wanted is None or by.is_admin:
        return
    if SCOPE_WIDTH[Scope(str(wanted))] > SCOPE_WIDTH[Scope(current)]:
        raise Forbidden(
            f"Only the National Point widens the scope of a {what} (from {current} to {wanted});"
            " you may keep it or narrow it."
        )


def scope_detail(old: str, new: str, reason: str | None = None) -> dict[str, Any]:
    """What the audit log keeps of a scope change."""
    detail: dict[str, Any] = {"scope": {"from": old, "to": new}}
    return detail | ({"reason": reason} if reason else {})


async def change_practice_scope(
    session: AsyncSession,
    practice_id: uuid.UUID,
    scope: Scope,
    *,
    by: Principal,
    expected_version: int | None = None,
    reason: str | None = None,
) -> Practice:
    """The National Point sets who may see a practice, audited (old → new). A published one
    gets a new version, and the feed follows: narrowed to `network`, the record is appended
    again with that scope; to `national`, a signed tombstone withdraws it; widened, appended
    again. Setting the scope it has changes nothing."""
    if not by.is_admin:
        raise Forbidden("Only the National Point's administrators change a record's scope.")
    practice = await get_practice(session, practice_id, by=by)
    if expected_version is not None:
        check_version(expected_version, practice.version, "practice")
    old = practice.scope
    if old == scope:
        return practice
    practice.scope = str(scope)
    await _touch(session, practice, by, "scope", scope_detail(old, str(scope), reason))
    return practice


async def get_practice(session: AsyncSession, practice_id: uuid.UUID, *, by: Principal) -> Practice:
    practice = await repository.get_practice(session, practice_id)
    # Unpublished and held records do not exist for anonymous visitors, not even as a 403.
    if practice is None or not visible_to(by, practice):
        raise NotFound(f"No practice with id {practice_id}.")
    return practice


async def practice_reads(
    session: AsyncSession, practices: Sequence[Practice]
) -> list[PracticeRead]:
    ids = {o.organisation_id for p in practices for o in p.organisations if o.organisation_id}
    names = await registry.organisation_names(session, {i for i in ids if i is not None})
    out = []
    for practice in practices:
        values: dict[str, Any] = {
            k: getattr(practice, k)
            for k in PracticeRead.model_fields
            if k not in ("organisations", "evaluation", *TERM_FIELDS)
        }
        values |= {field: practice.terms_of(facet) for field, facet in TERM_FIELDS.items()}
        values["evaluation"] = {"type": practice.evaluation_type, "outcomes": practice.outcomes}
        values["organisations"] = [
            {
                "organisation_id": o.organisation_id,
                "name": o.name,
                "role": o.role,
                "display_name": o.name
                or (names.get(o.organisation_id, "") if o.organisation_id else ""),
            }
            for o in practice.organisations
        ]
        out.append(PracticeRead.model_validate(values))
    return out


def _apply_practice(practice: Practice, values: dict[str, Any]) -> list[str]:
    changed = []
    for name, value in values.items():
        if name in TERM_FIELDS:
            facet = TERM_FIELDS[name]
            wanted = [(facet, str(v)) for v in value]
            wanted += [(t.facet, t.value) for t in practice.terms if t.facet != facet]
            if sync_collection(
                practice.terms,
                wanted,
                key=lambda t: (t.facet, t.value),
                make=lambda k: PracticeTerm(facet=k[0], value=k[1]),
            ):
                changed.append(name)
        elif name == "organisations":
            new = [(o["organisation_id"], o["name"], o["role"]) for o in value]
            old = [(o.organisation_id, o.name, o.role) for o in practice.organisations]
            if new != old:
                practice.organisations = [
                    PracticeOrganisation(organisation_id=i, name=n, role=r, position=pos)
                    for pos, (i, n, r) in enumerate(new)
                ]
                changed.append(name)
        elif name == "evaluation":
            if (practice.evaluation_type, practice.outcomes) != (value["type"], value["outcomes"]):
                practice.evaluation_type = value["type"]
                practice.outcomes = value["outcomes"]
                changed.append(name)
        elif getattr(practice, name) != value:
            setattr(practice, name, value)
            changed.append(name)
    return changed


def _values(data: PracticeCreate | PracticeUpdate, *, partial: bool) -> dict[str, Any]:
    values = given(data, mode="json") if partial else data.model_dump(mode="json")
    # Dates and UUIDs back to Python objects: JSON mode was for the nested JSON columns.
    python = given(data) if partial else data.model_dump(mode="python")
    for name in ("start_date", "end_date"):
        if name in values:
            values[name] = python[name]
    if "organisations" in values:
        for out, raw in zip(values["organisations"], python["organisations"] or [], strict=True):
            out["organisation_id"] = raw["organisation_id"]
    return values


async def create_practice(
    session: AsyncSession, data: PracticeCreate, *, by: Principal, is_sample: bool = False
) -> Practice:
    links = [(o.organisation_id, str(o.role)) for o in data.organisations]
    check_scope(by, Scope.public, data.scope, "practice")
    if not by.is_admin and not _owns(by, links):
        raise Forbidden(
            "Editors record practices of their own organisations: name one of them as responsible."
        )
    await check_links(session, data.organisations, "organisations")
    if data.ref and await repository.ref_owner(session, Practice, data.ref):
        raise Conflict(f"The ref '{data.ref}' is already used by another practice.")
    practice = Practice(is_sample=is_sample, terms=[], organisations=[], status="draft")
    _apply_practice(practice, _values(data, partial=False))
    session.add(practice)
    await session.flush()
    audit.record(session, by, action="create", entity_type="practice", entity_id=practice.id)
    return practice


async def update_practice(
    session: AsyncSession,
    practice_id: uuid.UUID,
    data: PracticeUpdate,
    *,
    expected_version: int,
    by: Principal,
    redact_previous: bool = False,
) -> Practice:
    """Change a practice; a published one gets a new version. `redact_previous`: the earlier
    versions leaked, so the federation purges their bodies wherever they travelled."""
    practice = await get_practice(session, practice_id, by=by)
    if not _may_edit(by, practice):
        raise Forbidden("Editors change drafts of their own organisations' practices only.")
    if (
        data.organisations is not None
        and not by.is_admin
        and not _owns(by, [(o.organisation_id, str(o.role)) for o in data.organisations])
    ):
        raise Forbidden("An organisation of yours must stay the responsible body.")
    check_version(expected_version, practice.version, "practice")
    check_scope(by, practice.scope, data.scope, "practice")
    edited = await apply_practice_changes(session, practice, data, by=by)
    if redact_previous:
        if practice.status != "published":
            raise InvalidInput("redact_previous", "only a published practice has versions out")
        outbox.enqueue(session, PRACTICE_CORRECTED, practice.id)
    return edited


async def apply_practice_changes(
    session: AsyncSession, practice: Practice, data: PracticeUpdate, *, by: Principal
) -> Practice:
    if data.organisations is not None:
        await check_links(session, data.organisations, "organisations")
    if data.ref:
        owner = await repository.ref_owner(session, Practice, data.ref)
        if owner and owner != practice.id:
            raise Conflict(f"The ref '{data.ref}' is already used by another practice.")
    values = _values(data, partial=True)
    try:
        check_dates(
            values.get("start_date", practice.start_date), values.get("end_date", practice.end_date)
        )
    except ValueError as exc:
        raise InvalidInput("end_date", str(exc)) from None
    old_scope = practice.scope
    changed = _apply_practice(practice, values)
    if changed:
        detail: dict[str, Any] = {"fields": changed}
        if "scope" in changed:
            detail |= scope_detail(old_scope, practice.scope)
        await _touch(session, practice, by, "update", detail)
    return practice


async def _touch(
    session: AsyncSession, practice: Practice, by: Principal, action: str, detail: dict[str, Any]
) -> None:
    practice.updated_at = utcnow()
    await session.flush()
    audit.record(
        session,
        by,
        action=action,
        entity_type="practice",
        entity_id=practice.id,
        detail=detail | {"version": practice.version, "status": practice.status},
    )
    if practice.status == "published" or action == "withdraw":
        outbox.enqueue(session, PRACTICE_CHANGED, practice.id)


# What a withdrawal for personal data erases: every text a person could be named in.
ERASED_TEXT = (
    "original_title",
    "description",
    "problem_addressed",
    "rationale",
    "staffing",
    "intensity_duration",
    "resources_funding",
    "sustainability",
    "transferability",
    "lessons_learned",
)
ERASED_TITLE = "[erased: personal data]"


def erase_free_text(practice: Practice) -> list[str]:
    """Erase a practice's free text (its title and summary replaced by a marker), and return
    the fields erased (no text of them is kept, in the audit log either)."""
    for name in ERASED_TEXT:
        setattr(practice, name, None)
    practice.title, practice.summary = ERASED_TITLE, ERASED_TITLE
    practice.translations, practice.outcomes, practice.links = [], [], []
    return ["title", "summary", *ERASED_TEXT, "translations", "outcomes", "links"]


async def transition_practice(
    session: AsyncSession,
    practice_id: uuid.UUID,
    action: str,
    *,
    expected_version: int,
    by: Principal,
    reason: str | None = None,
    settings: Settings | None = None,
    confirmed: bool = False,
    personal_data: bool = False,
) -> Practice:
    """submit (draft → in review), publish (→ published), withdraw (published → withdrawn).
    On a node that federates (`settings.country`), a publish needs `confirmed`: the
    publisher's word that the free text names no person the node cannot know. A withdrawal
    for `personal_data` erases the practice's free text here and has the federation purge
    every earlier body of it wherever it travelled."""
    practice = await get_practice(session, practice_id, by=by)
    check_version(expected_version, practice.version, "practice")
    allowed_from, target, admin_only = {
        "submit": (("draft",), "in_review", False),
        "publish": (("draft", "in_review", "withdrawn"), "published", True),
        "withdraw": (("published",), "withdrawn", True),
    }[action]
    if admin_only and not by.is_admin:
        raise Forbidden(f"Only the National Point's administrators {action} practices.")
    if not admin_only and not _may_edit(by, practice):
        raise Forbidden("Editors submit drafts of their own organisations' practices only.")
    if practice.status not in allowed_from:
        raise Conflict(
            f"A practice that is {practice.status} cannot be {action}ed "
            f"(only from {', '.join(allowed_from)})."
        )
    detail: dict[str, Any] = {"reason": reason} if reason else {}
    if action == "withdraw" and personal_data:
        detail = {"reason_code": "personal_data", "erased": erase_free_text(practice)}
    if action == "publish":
        check_confirmed(settings, confirmed)
        detail |= confirmation(confirmed)
    practice.status = target
    practice.withdrawn_reason = reason if action == "withdraw" else None
    if action == "publish":
        practice.published_at = utcnow()
    await _touch(session, practice, by, action, detail)
    if action == "withdraw" and personal_data:  # after the change's own work (the index)
        outbox.enqueue(session, PRACTICE_LEAKED, practice.id)
    return practice
