"""Recommendations followed up, in the browser: what is still open per addressee and per
report, and a report's follow-up page where the addressee's editors or the National Point
record what became of each recommendation (the status, the day, a note).

The pages call the API's own code (`practices.study_visits.recommendations`): the same
rules of who sees and who changes what, and every change audited. An editor whose
organisation a published report addresses finds it noted at the top of the follow-up page
(the interface's side of the mail its primary contact point was sent), and the National
Point sees whether each mail went, failed (with the server's answer; tried again) or could
not go (no primary contact point with an e-mail address).
"""

import uuid
from datetime import date
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from node.core.auth import Principal
from node.core.deps import SessionDep
from node.core.errors import Conflict, InvalidInput, NotFound
from node.web import forms
from node.web.forms import Problem
from node.web.guards import SignedIn
from node.web.i18n import N_
from node.web.render import page
from practices.study_visits import recommendations, service
from practices.study_visits.schemas import EU_LEVEL, RecommendationRead, StatusChange
from practices.vocabulary import RecommendationStatus

router = APIRouter()
NOTICE_STATES = {
    "pending": N_("To be sent"),
    "sent": N_("Mail sent"),
    "failed": N_("Not sent yet: tried again shortly"),
    "no_contact": N_("Not sent: no primary contact point with an e-mail address"),
    "cancelled": N_("Not sent: the report is no longer published"),
}  # fmt: skip
FIELD_LABELS = {
    "status": N_("New status"),
    "note": N_("Note (kept on this node)"),
    "date": N_("Day it took effect"),
}
STATUSES = [(str(s), s) for s in RecommendationStatus]


def _id(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(f"No {what} with id {value[:60]}.") from None


def _may_follow_up(by: Principal, item: RecommendationRead) -> bool:
    return by.is_admin or any(
        a.organisation_id is not None and by.may_edit(a.organisation_id) for a in item.addressees
    )


def _by_report(items: list[RecommendationRead]) -> list[tuple[uuid.UUID, str, list[Any]]]:
    grouped: dict[uuid.UUID, tuple[str, list[RecommendationRead]]] = {}
    for item in items:
        grouped.setdefault(item.study_visit_id, (item.report_title, []))[1].append(item)
    return [(visit_id, title, found) for visit_id, (title, found) in grouped.items()]


def _addressees(items: list[RecommendationRead]) -> list[tuple[str, str, int]]:
    """Each addressee of these recommendations (id or EU, name) and how many it has."""
    counts: dict[str, tuple[str, int]] = {}
    for item in items:
        for a in item.addressees:
            key = EU_LEVEL if a.eu_level else str(a.organisation_id)
            name, count = counts.get(key, (a.name, 0))
            counts[key] = (name, count + 1)
    return sorted(
        ((key, name, n) for key, (name, n) in counts.items()), key=lambda x: x[1].casefold()
    )


@router.get("/followup", response_class=HTMLResponse)
async def followup_page(request: Request, session: SessionDep, by: SignedIn) -> HTMLResponse:
    """The recommendations still open (or in the status asked for), of one addressee or all,
    by report; and how many each addressee has open."""
    addressee = request.query_params.get("addressee", "")[:40] or None
    wanted = request.query_params.get("status", "open")
    status = [wanted] if wanted in RecommendationStatus.__members__ else []
    if addressee not in (None, EU_LEVEL):
        try:
            uuid.UUID(str(addressee))
        except ValueError:
            addressee = None
    items = await recommendations.find_recommendations(
        session, by=by, addressee=addressee, status=status, open_only=wanted == "open"
    )
    every_open = await recommendations.find_recommendations(session, by=by, open_only=True)
    mine = [
        i
        for i in every_open
        if i.status == RecommendationStatus.received
        and i.report_status == "published"
        and any(a.organisation_id in by.organisation_ids for a in i.addressees)
    ]
    context = {
        "reports": _by_report(items),
        "addressees": _addressees(every_open),
        "addressee": addressee,
        "status": wanted if status or wanted == "open" else "all",
        "statuses": STATUSES,
        "yours": _by_report(mine),
        "filters": urlencode({"addressee": addressee or "", "status": wanted}),
    }
    return page(request, "followup/list.html", context)


async def _report_page(
    request: Request,
    session: SessionDep,
    by: Principal,
    visit_id: uuid.UUID,
    *,
    problems: dict[str, dict[str, Problem]] | None = None,
    typed: dict[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    visit = await service.get_study_visit(session, visit_id, by=by, audited=False)
    items = await recommendations.reads_of(session, visit)
    told = by.is_admin or (by.user_id is not None and visit.author_id == by.user_id)
    context = {
        "v": visit,
        "items": [(item, _may_follow_up(by, item)) for item in items],
        "notices": await recommendations.notices_of(session, visit.id) if told else [],
        "notice_states": NOTICE_STATES,
        "statuses": STATUSES,
        "problems": problems or {},
        "typed": typed or {},
        "labels": FIELD_LABELS,
        "today": date.today().isoformat(),
        "done": request.query_params.get("done") == "1",
    }
    return page(request, "followup/report.html", context, status_code=status_code)


@router.get("/followup/reports/{visit_id}", response_class=HTMLResponse)
async def report_followup(
    visit_id: str, request: Request, session: SessionDep, by: SignedIn
) -> HTMLResponse:
    return await _report_page(request, session, by, _id(visit_id, "study-visit report"))


@router.post("/followup/recommendations/{recommendation_id}", response_class=HTMLResponse)
async def change_status(
    recommendation_id: str, request: Request, session: SessionDep, by: SignedIn
) -> Response:
    wanted = _id(recommendation_id, "recommendation")
    form = await request.form()
    values = {
        "status": forms.text(form, "status"),
        "note": forms.text(form, "note"),
        "date": forms.text(form, "date"),
    }
    try:
        data = StatusChange.model_validate({k: v for k, v in values.items() if v})
        item, visit = await recommendations.change_status(session, wanted, data, by=by)
    except (ValidationError, InvalidInput, Conflict) as exc:  # Forbidden: the error page
        found = (
            forms.problems_of(exc)
            if isinstance(exc, ValidationError)
            else forms.problem_of(exc, "status")
        )
        item_visit = await recommendations.visit_of(session, wanted)
        if item_visit is None:
            raise NotFound(f"No recommendation with id {recommendation_id[:60]}.") from None
        return await _report_page(
            request,
            session,
            by,
            item_visit,
            problems={str(wanted): found},
            typed={str(wanted): values},
            status_code=422,
        )
    return RedirectResponse(f"/followup/reports/{visit.id}?done=1#rec-{item.id}", status_code=303)
