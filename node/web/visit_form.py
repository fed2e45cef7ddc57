"""Study-visit reports in the browser: a form in six steps that saves the draft at each one,
the participants on a page of their own, and the National Point's review.

The first step starts the draft (`StudyVisitStart`: the delegation comes at step 3, so the
draft may be without one until it is submitted); every later step is a partial update of the
same report through the API's service, with the version the page was drawn from (an edit
made meanwhile elsewhere is said, not overwritten). A reload shows what was saved. Observed
practices are found in the practice database, by a search on the step's own page (no script
needed); each recommendation to follow up is a row addressed to organisations of the registry
or the EU level, chosen from a list. Participants are
personal data: entered apart, kept on this node (the federation's projection leaves them
out), shown to its signed-in readers only.

The National Point reviews a submitted report: comments, a request for changes (with what
should change), or a publish with the publisher's confirmation that no person is named, and
what the personal-data gate holds of it shown at once.
"""

import uuid
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

import registry
from node.core.auth import Principal
from node.core.deps import SessionDep, SettingsDep
from node.core.errors import AppError, InvalidInput, NotFound, PreconditionFailed
from node.core.text import fold
from node.web import forms, i18n
from node.web.editing import LANGUAGE_CODES, SCOPE_LABELS, STATUS_LABELS
from node.web.forms import Problem
from node.web.guards import Admin, NotAllowed, SignedIn
from node.web.i18n import N_
from node.web.render import page
from practices import service as practices
from practices.schemas import GateFinding, Scope
from practices.search import service as search_service
from practices.search.port import SearchQuery
from practices.study_visits import service
from practices.study_visits.models import StudyVisit
from practices.study_visits.schemas import StudyVisitStart, StudyVisitUpdate
from registry import repository as registry_repository
from registry.repository import OrganisationFilter

router = APIRouter()
STEPS = {
    1: N_("The visit"),
    2: N_("Hosts and programme"),
    3: N_("Delegation"),
    4: N_("Practices observed"),
    5: N_("Findings"),
    6: N_("Recommendations"),
}
# The report's fields each step writes (what a partial update of it sends).
STEP_FIELDS = {
    1: ("title", "language", "organising_authority", "host_country", "start_date", "end_date",
        "purpose"),
    2: ("host_organisations", "programme"),
    3: ("delegation",),
    4: ("observed_practice_ids",),
    5: ("observations", "findings", "transferability"),
    6: ("recommendations", "recommendation_items"),
}  # fmt: skip
EDITABLE = ("draft", "changes_requested")
ROWS_MORE = 2
ITEM_ROWS_MORE = 1
FOUND = 20
REGISTRY_OFFERED = 2000
FIELD_LABELS = {
    "title": N_("Title of the report"),
    "language": N_("Language of the report"),
    "organising_authority": N_("Organising authority"),
    "host_country": N_("Host country"),
    "start_date": N_("First day"),
    "end_date": N_("Last day"),
    "purpose": N_("Purpose of the visit"),
    "host_organisations": N_("Host organisations"),
    "programme": N_("Programme"),
    "delegation": N_("Delegation"),
    "observed_practice_ids": N_("Practices observed"),
    "observations": N_("Observations"),
    "findings": N_("Findings"),
    "transferability": N_("Transferability"),
    "recommendations": N_("Recommendations"),
    "addressed_to": N_("Addressed to"),
    "recommendation_items": N_("Recommendations to follow up"),
    "participant_names": N_("Participants"),
    "comment": N_("Comment"),
    "confirm_no_person": N_("Confirmation"),
}


def _id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(f"No study-visit report with id {value[:60]}.") from None


async def _editable(session: SessionDep, visit_id: str, by: Principal) -> StudyVisit:
    """The author's report while a draft or sent back, any for the National Point."""
    visit = await service.get_study_visit(session, _id(visit_id), by=by, audited=False)
    mine = by.user_id is not None and visit.author_id == by.user_id
    if not (by.is_admin or (mine and visit.status in EDITABLE)):
        raise NotAllowed()
    return visit


async def _registry(session: SessionDep) -> dict[str, tuple[uuid.UUID, str]]:
    """The registry's organisations by their folded name (what a typed name is matched to)."""
    rows = await registry_repository.list_organisations(
        session, OrganisationFilter(), after=None, limit=REGISTRY_OFFERED
    )
    return {fold(o.name): (o.id, o.name) for o in rows}


def _link(name: str, known: dict[str, tuple[uuid.UUID, str]]) -> dict[str, Any]:
    """A body typed by name: the registry's organisation when the name is one of it."""
    found = known.get(fold(name))
    return {"organisation_id": str(found[0])} if found else {"name": name}


async def _link_names(session: SessionDep, links: list[dict[str, Any]]) -> list[str]:
    ids = {uuid.UUID(str(link["organisation_id"])) for link in links if link.get("organisation_id")}
    names = await registry.organisation_names(session, ids) if ids else {}
    out = []
    for link in links:
        org = link.get("organisation_id")
        out.append(names.get(uuid.UUID(str(org)), str(org)) if org else str(link.get("name") or ""))
    return out


def _step_values(
    form: FormData, step: int, known: dict[str, tuple[uuid.UUID, str]]
) -> dict[str, Any]:
    """What a step's form sent, as the API's JSON carries it."""
    if step == 1:
        values: dict[str, Any] = {
            name: forms.text(form, name)
            for name in ("title", "language", "start_date", "end_date", "purpose")
        }
        country = forms.text(form, "host_country")
        values["host_country"] = country.upper() if country else None
        authority = forms.text(form, "organising_authority")
        values["organising_authority"] = _link(authority, known) if authority else None
        return values
    if step == 2:
        return {
            "host_organisations": [
                _link(n, known) for n in forms.lines(form, "host_organisations")
            ],
            "programme": forms.text(form, "programme"),
        }
    if step == 3:
        rows = []
        drawn = forms.text(form, "rows") or ""
        for index in range(min(int(drawn), 200) if drawn.isdigit() and len(drawn) < 4 else 0):
            profession = forms.text(form, f"delegation.{index}.profession")
            count = forms.text(form, f"delegation.{index}.count")
            home = forms.text(form, f"delegation.{index}.home_organisation")
            if not (profession or count or home):
                continue  # an empty row
            row: dict[str, Any] = {"profession": profession, "count": count}
            if home:
                row["home_organisation"] = _link(home, known)
            rows.append(row)
        return {"delegation": rows}
    if step == 4:
        return {"observed_practice_ids": forms.chosen(form, "observed_practice_ids")}
    if step == 5:
        return {n: forms.text(form, n) for n in ("observations", "findings", "transferability")}
    items = []
    drawn = forms.text(form, "item_rows") or ""
    for index in range(min(int(drawn), 200) if drawn.isdigit() and len(drawn) < 4 else 0):
        text = forms.text(form, f"recommendation_items.{index}.text")
        addressees = list(
            dict.fromkeys(forms.chosen(form, f"recommendation_items.{index}.addressees"))
        )
        if text or addressees:  # an empty row is no item
            items.append({"text": text, "addressees": addressees})
    return {"recommendations": forms.text(form, "recommendations"), "recommendation_items": items}


def _problems(exc: ValidationError | AppError) -> dict[str, Problem]:
    return forms.problems_of(exc) if isinstance(exc, ValidationError) else forms.problem_of(exc)


async def _step_page(
    request: Request,
    session: SessionDep,
    by: Principal,
    step: int,
    visit: StudyVisit | None,
    *,
    values: dict[str, Any] | None = None,
    problems: dict[str, Problem] | None = None,
    status_code: int = 200,
    **extra: Any,
) -> HTMLResponse:
    read = await service.study_visit_read(session, visit, by=by) if visit else None
    current: dict[str, Any] = read.model_dump(mode="json") if read else {}
    shown = dict(current)
    if values is not None:
        shown |= values
    known = await _registry(session)
    context: dict[str, Any] = {
        "v": read,
        "step": step,
        "steps": STEPS,
        "values": shown,
        "problems": problems or {},
        "labels": FIELD_LABELS,
        "status_labels": STATUS_LABELS,
        "registry_names": sorted((name for _id, name in known.values()), key=fold),
        "languages": [
            (code, i18n.language_name(code, i18n.language_of(request))) for code in LANGUAGE_CODES
        ],
        "saved": request.query_params.get("saved") == "1",
        "stale": None,
    }
    if step == 1:
        authority = shown.get("organising_authority")
        context["authority"] = (await _link_names(session, [authority]))[0] if authority else ""
    if step == 2:
        context["hosts"] = await _link_names(session, shown.get("host_organisations") or [])
    if step == 3:
        rows = list(shown.get("delegation") or [])
        homes = await _link_names(
            session, [r.get("home_organisation") or {"name": ""} for r in rows]
        )
        context["rows"] = [
            (r.get("profession") or "", r.get("count") or "", home)
            for r, home in zip(rows, homes, strict=True)
        ] + [("", "", "")] * (ROWS_MORE + (2 if request.query_params.get("more") else 0))
    if step == 4:
        context |= await _practices_offered(
            session, by, shown.get("observed_practice_ids") or [], request
        )
    if step == 6:
        items = []
        for item in shown.get("recommendation_items") or []:
            chosen = [
                str(a.get("organisation_id") or "EU") if isinstance(a, dict) else str(a)
                for a in item.get("addressees") or []
            ]
            items.append((item.get("text") or "", chosen))
        more = ITEM_ROWS_MORE + (2 if request.query_params.get("more") else 0)
        organisations = sorted(((str(i), n) for i, n in known.values()), key=lambda o: fold(o[1]))
        context |= {"items": items + [("", [])] * more, "organisations": organisations}
    context |= extra
    return page(request, "editing/visit_step.html", context, status_code=status_code)


async def _practices_offered(
    session: SessionDep, by: Principal, chosen: list[str], request: Request
) -> dict[str, Any]:
    """The practices already linked, and those a search of the practice database finds."""
    linked = []
    for practice_id in chosen:
        try:
            practice = await practices.get_practice(session, uuid.UUID(str(practice_id)), by=by)
        except (NotFound, ValueError):
            continue
        linked.append((str(practice.id), practice.title))
    q = request.query_params.get("pq", "").strip()[:200]
    found: list[tuple[str, str]] = []
    if q and q.isprintable():
        query = SearchQuery(text=q, filters={}, sort="relevance", limit=FOUND, cursor=None)
        results = await search_service.search(
            session, request.app.state.search, search_service.LOCAL, query, by=by
        )
        ids = {pid for pid, _ in linked}
        found = [(str(h.id), h.title) for h in results.items if str(h.id) not in ids]
    return {"linked": linked, "found": found, "pq": q}


# --- the steps ----------------------------------------------------------------------------


@router.get("/study-visits/new", response_class=HTMLResponse)
async def new_report(request: Request, session: SessionDep, by: SignedIn) -> HTMLResponse:
    values = {"language": i18n.language_of(request)}
    return await _step_page(request, session, by, 1, None, values=values)


@router.post("/study-visits/new", response_class=HTMLResponse)
async def start_report(request: Request, session: SessionDep, by: SignedIn) -> Response:
    form = await request.form()
    values = _step_values(form, 1, await _registry(session))
    try:
        data = StudyVisitStart.model_validate({k: v for k, v in values.items() if v is not None})
        visit = await service.create_study_visit(session, data, by=by)
    except (ValidationError, AppError) as exc:
        return await _step_page(
            request, session, by, 1, None, values=values, problems=_problems(exc), status_code=422
        )
    return RedirectResponse(f"/study-visits/{visit.id}/edit/2", status_code=303)


def _step(value: str) -> int:
    if not value.isdigit() or int(value) not in STEPS:
        raise NotFound(f"No step {value[:10]}.")
    return int(value)


@router.get("/study-visits/{visit_id}/edit/{step}", response_class=HTMLResponse)
async def report_step(
    visit_id: str, step: str, request: Request, session: SessionDep, by: SignedIn
) -> HTMLResponse:
    number = _step(step)
    visit = await _editable(session, visit_id, by)
    return await _step_page(request, session, by, number, visit)


@router.post("/study-visits/{visit_id}/edit/{step}", response_class=HTMLResponse)
async def save_step(
    visit_id: str, step: str, request: Request, session: SessionDep, by: SignedIn
) -> Response:
    number = _step(step)
    visit = await _editable(session, visit_id, by)
    form = await request.form()
    values = _step_values(form, number, await _registry(session))
    sent = forms.version(form)
    update = {k: v for k, v in values.items() if v is not None or getattr(visit, k) is not None}
    try:
        data = StudyVisitUpdate.model_validate(update)
        await service.update_study_visit(session, visit.id, data, expected_version=sent, by=by)
    except PreconditionFailed:
        stale = {"sent": sent, "current": visit.version, "rows": []}
        return await _step_page(
            request, session, by, number, visit, values=values, stale=stale, status_code=412
        )
    except (ValidationError, AppError) as exc:
        return await _step_page(
            request, session, by, number, visit, values=values, problems=_problems(exc),
            status_code=422,
        )  # fmt: skip
    go = forms.text(form, "go") or "next"
    here = f"/study-visits/{visit.id}/edit/{number}?saved=1"
    if go == "more":
        return RedirectResponse(here + "&more=1#delegation", status_code=303)
    if go == "more-items":
        return RedirectResponse(here + "&more=1#items", status_code=303)
    if go == "search-practices":
        query = (forms.text(form, "pq") or "")[:200]
        return RedirectResponse(here + "&" + _query("pq", query) + "#found", status_code=303)
    if go == "stay" or number == max(STEPS):
        return RedirectResponse(here, status_code=303)
    return RedirectResponse(f"/study-visits/{visit.id}/edit/{number + 1}?saved=1", status_code=303)


def _query(name: str, value: str) -> str:
    return urlencode({name: value})


@router.get("/study-visits/{visit_id}/participants", response_class=HTMLResponse)
async def participants_page(
    visit_id: str, request: Request, session: SessionDep, by: SignedIn
) -> HTMLResponse:
    visit = await _editable(session, visit_id, by)
    read = await service.study_visit_read(session, visit, by=by)
    saved = request.query_params.get("saved") == "1"
    context = {
        "v": read,
        "problems": {},
        "saved": saved,
        "labels": FIELD_LABELS,
        "stale": None,
        "steps": STEPS,
    }
    return page(request, "editing/visit_participants.html", context)


@router.post("/study-visits/{visit_id}/participants", response_class=HTMLResponse)
async def save_participants(
    visit_id: str, request: Request, session: SessionDep, by: SignedIn
) -> Response:
    visit = await _editable(session, visit_id, by)
    form = await request.form()
    names = [
        line for line in (forms.text(form, "participant_names") or "").splitlines() if line.strip()
    ]
    try:
        data = StudyVisitUpdate.model_validate({"participant_names": [n.strip() for n in names]})
        await service.update_study_visit(
            session, visit.id, data, expected_version=forms.version(form), by=by
        )
    except PreconditionFailed:
        read = await service.study_visit_read(session, visit, by=by)
        stale = {"sent": forms.version(form), "current": visit.version, "rows": []}
        context = {
            "v": read,
            "problems": {},
            "saved": False,
            "labels": FIELD_LABELS,
            "stale": stale,
        }
        return page(request, "editing/visit_participants.html", context, status_code=412)
    except (ValidationError, AppError) as exc:
        read = await service.study_visit_read(session, visit, by=by)
        context = {
            "v": read,
            "problems": {"participant_names": next(iter(_problems(exc).values()))},
            "saved": False,
            "labels": FIELD_LABELS,
            "stale": None,
            "typed": "\n".join(names),
            "steps": STEPS,
        }
        return page(request, "editing/visit_participants.html", context, status_code=422)
    return RedirectResponse(f"/study-visits/{visit.id}/participants?saved=1", status_code=303)


@router.post("/study-visits/{visit_id}/submit", response_class=HTMLResponse)
async def submit_report(
    visit_id: str, request: Request, session: SessionDep, settings: SettingsDep, by: SignedIn
) -> Response:
    visit = await _editable(session, visit_id, by)
    form = await request.form()
    if not visit.delegation:  # the service refuses it too; said here beside the button
        problems = {"submit": Problem(N_("Name the delegation (step 3) before submitting."))}
        return await _step_page(
            request, session, by, max(STEPS), visit, problems=problems, status_code=422
        )
    try:
        await service.transition_study_visit(
            session, visit.id, "submit", expected_version=forms.version(form), by=by
        )
    except PreconditionFailed:
        stale = {"sent": forms.version(form), "current": visit.version, "rows": []}
        return await _step_page(
            request, session, by, max(STEPS), visit, stale=stale, status_code=412
        )
    except AppError as exc:
        problems = forms.problem_of(exc, default_field="submit")
        return await _step_page(
            request, session, by, max(STEPS), visit, problems=problems, status_code=422
        )
    return RedirectResponse(f"/study-visits/{visit.id}?submitted=1", status_code=303)


# --- the National Point's review ------------------------------------------------------------


async def _review_page(
    request: Request,
    session: SessionDep,
    by: Principal,
    visit: StudyVisit,
    *,
    problems: dict[str, Problem] | None = None,
    hold: list[GateFinding] | None = None,
    done: str | None = None,
    status_code: int = 200,
    stale: dict[str, Any] | None = None,
) -> HTMLResponse:
    read = await service.study_visit_read(session, visit, by=by)
    authority = await _link_names(session, [read.organising_authority.model_dump(mode="json")])
    hosts = await _link_names(session, [h.model_dump(mode="json") for h in read.host_organisations])
    observed = []
    for practice_id in read.observed_practice_ids:
        try:
            practice = await practices.get_practice(session, practice_id, by=by)
        except NotFound:
            continue
        observed.append((practice.id, practice.title))
    context = {
        "v": read,
        "authority": authority[0],
        "hosts": hosts,
        "observed": observed,
        "problems": problems or {},
        "hold": hold or [],
        "done": done,
        "labels": FIELD_LABELS,
        "status_labels": STATUS_LABELS,
        "scopes": [(str(s), SCOPE_LABELS[str(s)]) for s in Scope],
        "scope_labels": SCOPE_LABELS,
        "stale": stale,
        "done_messages": REVIEW_DONE,
    }
    return page(request, "editing/visit_review.html", context, status_code=status_code)


REVIEW_DONE = {
    "comment": N_("Your comment is saved."),
    "request-changes": N_("Sent back to the author with your request."),
    "publish": N_("Published, and sent to the bodies it is addressed to."),
    "scope": N_("Who may see it is changed."),
    "withdraw": N_("Withdrawn: the hub and its mirrors remove their copies."),
}


@router.get("/study-visits/{visit_id}/review", response_class=HTMLResponse)
async def review_page(
    visit_id: str, request: Request, session: SessionDep, by: Admin
) -> HTMLResponse:
    visit = await service.get_study_visit(session, _id(visit_id), by=by)
    done = request.query_params.get("done")
    return await _review_page(
        request, session, by, visit, done=done if done in REVIEW_DONE else None
    )


@router.post("/study-visits/{visit_id}/review/{action}", response_class=HTMLResponse)
async def review_action(
    visit_id: str,
    action: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    by: Admin,
) -> Response:
    if action not in REVIEW_DONE:
        raise NotFound(f"No review action {action[:30]}.")
    visit = await service.get_study_visit(session, _id(visit_id), by=by, audited=False)
    form = await request.form()
    comment = forms.text(form, "comment")
    try:
        if action in ("comment", "request-changes") and not comment:
            problems = {action: Problem(N_("Write the comment first."))}
            return await _review_page(
                request, session, by, visit, problems=problems, status_code=422
            )
        if action == "comment":
            await service.comment_study_visit(session, visit.id, comment or "", by=by)
        elif action == "withdraw":
            reason = forms.text(form, "reason")
            if not reason:
                problems = {action: Problem(N_("Say why it is withdrawn."))}
                return await _review_page(
                    request, session, by, visit, problems=problems, status_code=422
                )
            await service.withdraw_study_visit(
                session, visit.id, reason, expected_version=forms.version(form), by=by
            )
        elif action == "scope":
            wanted = forms.text(form, "scope") or ""
            if wanted not in SCOPE_LABELS:
                raise InvalidInput("scope", "choose one of the values offered")
            await service.change_study_visit_scope(
                session, visit.id, Scope(wanted), by=by, expected_version=forms.version(form),
                reason=forms.text(form, "reason"),
            )  # fmt: skip
        else:
            await service.transition_study_visit(
                session,
                visit.id,
                action,
                expected_version=forms.version(form),
                by=by,
                comment=comment,
                settings=settings,
                confirmed=forms.ticked(form, "confirm_no_person"),
            )
    except PreconditionFailed:
        stale = {"sent": forms.version(form), "current": visit.version, "rows": []}
        return await _review_page(request, session, by, visit, stale=stale, status_code=412)
    except (ValidationError, AppError) as exc:
        found = _problems(exc)
        problems = {action: next(iter(found.values()))}
        if "confirm_no_person" in found:
            problems = {"confirm_no_person": found["confirm_no_person"]}
        return await _review_page(
            request, session, by, visit, problems=problems, status_code=422
        )  # fmt: skip
    if action == "publish":
        [hold] = await practices.gate_verdicts(session, settings, [("study_visit", visit)])
        if hold:
            return await _review_page(request, session, by, visit, hold=hold, done=action)
    return RedirectResponse(f"/study-visits/{visit.id}/review?done={action}", status_code=303)
