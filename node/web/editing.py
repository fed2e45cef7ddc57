"""Practices in the browser: editors draft and submit those of their organisations; the
National Point's administrators publish, withdraw and set who may see them.

Each form is read into the values a JSON client sends and goes through the same schema and
service as the API (`practices.service`), so a browser meets the API's rules, shown beside the
fields (`node.web.forms`). What the personal-data gate holds is said at once, with the words
that fired in their context: on a publish (the service's own verdict) and, as a warning before
the National Point reads it, on a submit. Publishing needs the publisher's confirmation that
the free text names no person (`confirm_no_person`), a box on the form.

An editor reaches the forms of their own organisations' practices only (any other is a 403
page, never the form); "My work" lists what each user has to do.
"""

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from starlette.datastructures import FormData

import registry
from node.core.auth import Principal, UserRole
from node.core.deps import SessionDep, SettingsDep
from node.core.errors import AppError, InvalidInput, NotFound, PreconditionFailed
from node.web import forms, i18n
from node.web.forms import Problem
from node.web.guards import NotAllowed, SignedIn, Staff
from node.web.i18n import N_
from node.web.labels import label
from node.web.render import page
from practices import service
from practices.models import Practice, PracticeOrganisation
from practices.schemas import GateFinding, PracticeCreate, PracticeRead, PracticeUpdate, Scope
from practices.study_visits import repository as visits
from practices.vocabulary import (
    EvaluationType,
    Ideology,
    InterventionType,
    Licence,
    PracticeKind,
    ProcessFocus,
    ReviewLabel,
    Setting,
)
from registry import repository as registry_repository
from registry.repository import OrganisationFilter
from registry.vocabulary import Level, TargetGroup

router = APIRouter()
LISTED = 200
ORGANISATIONS_OFFERED = 2000
# The languages a record may be written in (the EU's official ones), by name.
LANGUAGE_CODES = "bg cs da de el en es et fi fr ga hr hu it lt lv mt nl pl pt ro sk sl sv".split()
STATUS_LABELS = {
    "draft": N_("Draft"),
    "in_review": N_("Waiting for review"),
    "published": N_("Published"),
    "withdrawn": N_("Withdrawn"),
    "submitted": N_("Submitted for review"),
    "changes_requested": N_("Changes requested"),
}
SCOPE_LABELS = {
    "public": N_("Public: anyone, here, at the hub and on every mirror"),
    "network": N_("Network: signed-in professionals of the federation"),
    "national": N_("National: signed-in users of this node only"),
}
TEXT_FIELDS = (
    "title",
    "original_title",
    "summary",
    "description",
    "problem_addressed",
    "rationale",
    "staffing",
    "intensity_duration",
    "resources_funding",
    "sustainability",
    "transferability",
    "lessons_learned",
    "country",
    "ref",
)
CHOICE_FIELDS = {
    "intervention_types": InterventionType,
    "process_focus": ProcessFocus,
    "settings": Setting,
    "target_groups": TargetGroup,
    "ideologies": Ideology,
}
FIELD_LABELS = {
    "kind": N_("Kind of record"),
    "title": N_("Title"),
    "original_title": N_("Title in the original language"),
    "language": N_("Language of the text"),
    "summary": N_("Summary"),
    "description": N_("Description"),
    "problem_addressed": N_("Problem addressed"),
    "rationale": N_("Rationale"),
    "staffing": N_("Staffing"),
    "intensity_duration": N_("Intensity and duration"),
    "resources_funding": N_("Resources and funding"),
    "sustainability": N_("Sustainability"),
    "transferability": N_("Transferability"),
    "lessons_learned": N_("Lessons learned"),
    "country": N_("Country"),
    "ref": N_("Reference"),
    "organisations": N_("Responsible organisation"),
    "responsible": N_("Responsible organisation"),
    "geographical_scope": N_("Geographical scope"),
    "start_date": N_("Started"),
    "end_date": N_("Ended"),
    "evaluation": N_("Evaluation"),
    "review_label": N_("Review"),
    "licence": N_("Licence"),
    "scope": N_("Who may see it"),
    "intervention_types": N_("Intervention type"),
    "process_focus": N_("Process focus"),
    "settings": N_("Setting"),
    "target_groups": N_("Target group"),
    "ideologies": N_("Ideologies addressed"),
    "reason": N_("Reason"),
    "confirm_no_person": N_("Confirmation"),
}


def options(vocabulary: Any) -> list[tuple[str, str]]:
    return [(str(code), label(vocabulary, str(code))) for code in vocabulary]


def language_options(request: Request) -> list[tuple[str, str]]:
    reader = i18n.language_of(request)
    return [(code, i18n.language_name(code, reader)) for code in LANGUAGE_CODES]


def parse_id(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(f"No {what} with id {value[:60]}.") from None


def responsible_of(read: PracticeRead) -> uuid.UUID | None:
    return next(
        (o.organisation_id for o in read.organisations if o.role == "responsible"),
        None,
    )


def may_edit(by: Principal, read: PracticeRead) -> bool:
    """The service's rule, said before a form is drawn: administrators every practice,
    editors those whose responsible body is one of theirs, while a draft, in review or held."""
    if by.is_admin:
        return True
    editable = read.status in service.EDITABLE_BY_EDITORS or read.held
    return (
        by.role == UserRole.editor
        and editable
        and any(
            o.organisation_id is not None
            and o.role == "responsible"
            and by.may_edit(o.organisation_id)
            for o in read.organisations
        )
    )


async def organisation_choices(session: SessionDep, by: Principal) -> list[tuple[str, str]]:
    """The organisations a practice may name as responsible: an editor's own, or (for an
    administrator) the registry's."""
    if by.is_admin:
        rows = await registry_repository.list_organisations(
            session, OrganisationFilter(), after=None, limit=ORGANISATIONS_OFFERED
        )
        return [(str(o.id), o.name) for o in rows]
    names = await registry.organisation_names(session, set(by.organisation_ids))
    return sorted(((str(i), n) for i, n in names.items()), key=lambda pair: pair[1].lower())


def practice_form(form: FormData, current: PracticeRead | None) -> dict[str, Any]:
    """The values of a practice form, as the API's JSON carries them."""
    values: dict[str, Any] = {name: forms.text(form, name) for name in TEXT_FIELDS}
    if values["country"]:
        values["country"] = values["country"].upper()
    for name in ("kind", "language", "geographical_scope", "review_label", "licence"):
        values[name] = forms.text(form, name)
    for name in CHOICE_FIELDS:
        values[name] = forms.chosen(form, name)
    for name in ("start_date", "end_date"):
        values[name] = forms.text(form, name)
    outcomes = [o.model_dump(mode="json") for o in current.evaluation.outcomes] if current else []
    values["evaluation"] = {"type": forms.text(form, "evaluation_type") or "none"}
    if outcomes:
        values["evaluation"]["outcomes"] = outcomes
    responsible = forms.text(form, "responsible")
    links: list[dict[str, Any]] = []
    if responsible:
        links.append({"organisation_id": responsible, "role": "responsible"})
    if current is not None:
        kept = [o for o in current.organisations if o.organisation_id != responsible_of(current)]
        links += [
            o.model_dump(mode="json", include={"organisation_id", "name", "role"}) for o in kept
        ]
        links = [{k: v for k, v in link.items() if v is not None} for link in links]
    values["organisations"] = links
    scope = forms.text(form, "scope")
    if scope and current is None:
        values["scope"] = scope
    return values


def _problems(exc: ValidationError | AppError) -> dict[str, Problem]:
    if isinstance(exc, ValidationError):
        found = forms.problems_of(exc)
    else:
        found = forms.problem_of(exc)
    # The form names the responsible body `responsible`, the evaluation's type alone.
    out: dict[str, Problem] = {}
    for name, problem in found.items():
        if name.startswith("organisations"):
            name = "responsible"
        elif name.startswith("evaluation"):
            name = "evaluation_type"
        out.setdefault(name, problem)
    return out


async def _form_page(
    request: Request,
    session: SessionDep,
    by: Principal,
    read: PracticeRead | None,
    *,
    values: dict[str, Any] | None = None,
    problems: dict[str, Problem] | None = None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    if values is None:
        values = read.model_dump(mode="json") if read is not None else {}
        if read is not None:
            values["responsible"] = str(responsible_of(read) or "")
            values["evaluation_type"] = read.evaluation.type
    else:
        values = dict(values)
        values["responsible"] = next(
            (o.get("organisation_id") for o in values.get("organisations", [])), ""
        )
        values["evaluation_type"] = values.get("evaluation", {}).get("type")
    base: dict[str, Any] = {
        "p": read,
        "values": values,
        "problems": problems or {},
        "labels": FIELD_LABELS,
        "kinds": options(PracticeKind),
        "languages": language_options(request),
        "levels": options(Level),
        "evaluation_types": options(EvaluationType),
        "review_labels": options(ReviewLabel),
        "licences": options(Licence),
        "choices": [
            (name, FIELD_LABELS[name], options(vocabulary))
            for name, vocabulary in CHOICE_FIELDS.items()
        ],
        "scopes": [(str(s), SCOPE_LABELS[str(s)]) for s in Scope],
        "organisations": await organisation_choices(session, by),
        "status_labels": STATUS_LABELS,
        "scope_labels": SCOPE_LABELS,
        "may_publish": by.is_admin,
        "hold": [],
        "stale": None,
        "done": None,
        "done_messages": DONE_MESSAGES,
        "failed": None,
    }
    return page(request, "editing/practice_form.html", base | context, status_code=status_code)


async def _read(session: SessionDep, practice: Practice) -> PracticeRead:
    return (await service.practice_reads(session, [practice]))[0]


async def _editable(session: SessionDep, practice_id: str, by: Principal) -> PracticeRead:
    practice = await service.get_practice(session, parse_id(practice_id, "practice"), by=by)
    read = await _read(session, practice)
    if not may_edit(by, read):
        raise NotAllowed()
    return read


# --- pages --------------------------------------------------------------------------------


@router.get("/my-work", response_class=HTMLResponse)
async def my_work(request: Request, session: SessionDep, by: SignedIn) -> HTMLResponse:
    """What this user has to do: their practices and reports, and (administrators) what
    waits for review."""
    practices: list[Practice] = []
    if by.is_admin:
        stmt = (
            select(Practice)
            .where(Practice.status.in_(("in_review", "draft")))
            .order_by(Practice.updated_at.desc())
            .limit(LISTED)
        )
        practices = list((await session.scalars(stmt)).all())
    elif by.role == UserRole.editor and by.organisation_ids:
        ours = select(PracticeOrganisation.practice_id).where(
            PracticeOrganisation.role == "responsible",
            PracticeOrganisation.organisation_id.in_(by.organisation_ids),
        )
        stmt = (
            select(Practice)
            .where(Practice.id.in_(ours))
            .order_by(Practice.updated_at.desc())
            .limit(LISTED)
        )
        practices = list((await session.scalars(stmt)).all())
    reports = await visits.list_study_visits(
        session,
        status=["draft", "changes_requested", "submitted"],
        host_country=[],
        visible_to=by.user_id,
        after=None,
        limit=LISTED,
    )
    mine = [v for v in reports if v.author_id == by.user_id]
    to_review = []
    if by.is_admin:
        to_review = list(
            await visits.list_study_visits(
                session,
                status=["submitted"],
                host_country=[],
                visible_to=None,
                after=None,
                limit=LISTED,
            )
        )
    context = {
        "practices": practices,
        "reports": mine,
        "to_review": to_review,
        "status_labels": STATUS_LABELS,
        "may_write_practices": by.role in (UserRole.admin, UserRole.editor),
    }
    return page(request, "editing/my_work.html", context)


@router.get("/practices/new", response_class=HTMLResponse)
async def new_practice(request: Request, session: SessionDep, by: Staff) -> HTMLResponse:
    values: dict[str, Any] = {"scope": "public", "review_label": "self_reported"}
    values |= {"licence": "CC-BY-4.0", "language": "en", "evaluation": {"type": "none"}}
    return await _form_page(request, session, by, None, values=values)


@router.post("/practices/new", response_class=HTMLResponse)
async def create_practice(request: Request, session: SessionDep, by: Staff) -> Response:
    form = await request.form()
    values = practice_form(form, None)
    try:
        data = PracticeCreate.model_validate(_clean(values))
        practice = await service.create_practice(session, data, by=by)
    except (ValidationError, AppError) as exc:
        return await _form_page(
            request, session, by, None, values=values, problems=_problems(exc), status_code=422
        )
    return RedirectResponse(f"/practices/{practice.id}/edit?done=created", status_code=303)


def _clean(values: dict[str, Any]) -> dict[str, Any]:
    """Leave out what the form left empty (the schema's default applies, or its refusal)."""
    return {k: v for k, v in values.items() if v not in (None, "")}


@router.get("/practices/{practice_id}/edit", response_class=HTMLResponse)
async def edit_practice(
    practice_id: str, request: Request, session: SessionDep, by: Staff
) -> HTMLResponse:
    read = await _editable(session, practice_id, by)
    done = request.query_params.get("done")
    return await _form_page(
        request, session, by, read, done=done if done in DONE_MESSAGES else None
    )


DONE_MESSAGES = {
    "created": N_("The draft is saved."),
    "saved": N_("Saved."),
    "submitted": N_("Submitted: the National Point will review it."),
    "published": N_("Published."),
    "withdrawn": N_("Withdrawn."),
    "scope": N_("Who may see it is changed."),
}


@router.post("/practices/{practice_id}/edit", response_class=HTMLResponse)
async def save_practice(
    practice_id: str, request: Request, session: SessionDep, settings: SettingsDep, by: Staff
) -> Response:
    read = await _editable(session, practice_id, by)
    form = await request.form()
    values = practice_form(form, read)
    sent = forms.version(form)
    update = {k: v for k, v in values.items() if k != "scope"}
    for name, value in list(update.items()):
        if value in (None, "") and getattr(read, name, None) in (None, ""):
            update.pop(name)  # empty and empty: nothing to say
    try:
        data = PracticeUpdate.model_validate(update)
        practice = await service.update_practice(
            session, read.id, data, expected_version=sent, by=by
        )
    except PreconditionFailed:
        stale = {"sent": sent, "current": read.version, "rows": []}
        return await _form_page(
            request, session, by, read, values=values, stale=stale, status_code=412
        )
    except (ValidationError, AppError) as exc:
        return await _form_page(
            request, session, by, read, values=values, problems=_problems(exc), status_code=422
        )
    hold: list[GateFinding] = []
    if practice.status == "published" and practice.version != sent:
        [hold] = await service.gate_verdicts(session, settings, [("practice", practice)])
    if hold:
        return await _form_page(
            request, session, by, await _read(session, practice), hold=hold, done="saved"
        )
    return RedirectResponse(f"/practices/{practice.id}/edit?done=saved", status_code=303)


async def _transition(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    by: Principal,
    practice_id: str,
    action: str,
) -> Response:
    read = await _editable(session, practice_id, by)
    form = await request.form()
    reason = forms.text(form, "reason")
    personal = forms.ticked(form, "personal_data")
    try:
        if action == "withdraw" and not reason:
            raise InvalidInput("reason", "say why it is withdrawn")
        if len(reason or "") > 20_000:
            raise InvalidInput("reason", "at most 20000 characters")
        if action == "scope":
            wanted = forms.text(form, "scope") or ""
            if wanted not in SCOPE_LABELS:
                raise InvalidInput("scope", "choose one of the values offered")
            practice = await service.change_practice_scope(
                session,
                read.id,
                Scope(wanted),
                by=by,
                expected_version=forms.version(form),
                reason=reason,
            )
        else:
            practice = await service.transition_practice(
                session,
                read.id,
                action,
                expected_version=forms.version(form),
                by=by,
                reason=reason,
                settings=settings,
                confirmed=forms.ticked(form, "confirm_no_person"),
                personal_data=action == "withdraw" and personal,
            )
    except PreconditionFailed:
        stale = {"sent": forms.version(form), "current": read.version, "rows": []}
        return await _form_page(request, session, by, read, stale=stale, status_code=412)
    except AppError as exc:
        problems = forms.problem_of(exc, default_field=action)
        return await _form_page(
            request, session, by, read, problems=problems, failed=action, status_code=422
        )
    hold: list[GateFinding] = []
    if action in ("publish", "submit"):
        # On a publish, the gate's verdict; on a submit, what it would hold if published now.
        [hold] = await service.gate_verdicts(session, settings, [("practice", practice)])
    done = {"submit": "submitted", "publish": "published", "withdraw": "withdrawn"}.get(
        action, "scope"
    )
    if hold:
        return await _form_page(
            request, session, by, await _read(session, practice), hold=hold, done=done
        )
    return RedirectResponse(f"/practices/{practice.id}/edit?done={done}", status_code=303)


@router.post("/practices/{practice_id}/submit", response_class=HTMLResponse)
async def submit_practice(
    practice_id: str, request: Request, session: SessionDep, settings: SettingsDep, by: Staff
) -> Response:
    return await _transition(request, session, settings, by, practice_id, "submit")


@router.post("/practices/{practice_id}/publish", response_class=HTMLResponse)
async def publish_practice(
    practice_id: str, request: Request, session: SessionDep, settings: SettingsDep, by: Staff
) -> Response:
    _admin_only(by)
    return await _transition(request, session, settings, by, practice_id, "publish")


@router.post("/practices/{practice_id}/withdraw", response_class=HTMLResponse)
async def withdraw_practice(
    practice_id: str, request: Request, session: SessionDep, settings: SettingsDep, by: Staff
) -> Response:
    _admin_only(by)
    return await _transition(request, session, settings, by, practice_id, "withdraw")


@router.post("/practices/{practice_id}/scope", response_class=HTMLResponse)
async def practice_scope(
    practice_id: str, request: Request, session: SessionDep, settings: SettingsDep, by: Staff
) -> Response:
    _admin_only(by)
    return await _transition(request, session, settings, by, practice_id, "scope")


def _admin_only(by: Principal) -> None:
    if not by.is_admin:
        raise NotAllowed()
