"""Needs heard, in the browser: a signed-in member of an organisation records what it needs
(training, tools, guidance, cooperation...) and sees its organisations' needs; the National
Point sees every need grouped by kind, organisation and term; the hub (or a node mirroring
it) shows what every node shares: counts only.

The pages call the API's own code (`practices.needs.service`): the same schema, the same
rules of who records for which organisation, every change audited.
"""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from federation.needs import combine
from federation.pool import needs_summaries
from node.core.auth import Principal
from node.core.deps import SessionDep
from node.web import forms
from node.web.forms import Problem
from node.web.guards import Admin, SignedIn
from node.web.i18n import N_
from node.web.labels import label
from node.web.render import page
from practices.needs import service
from practices.needs.schemas import NeedCreate, NeedUpdate
from practices.needs.vocabulary import FIELDS, NeedKind, NeedStatus
from practices.vocabulary import InterventionType, Setting
from registry.models import Organisation
from registry.vocabulary import Area, TargetGroup

router = APIRouter()
KINDS = {
    NeedKind.training: N_("Training and education"),
    NeedKind.tools: N_("Tools and materials"),
    NeedKind.guidance: N_("Guidance and professional guides"),
    NeedKind.protocols: N_("Protocols and procedures"),
    NeedKind.information_sharing: N_("Information sharing and data management"),
    NeedKind.communication: N_("Communication between agencies"),
    NeedKind.cooperation: N_("Multi-agency cooperation and contacts"),
    NeedKind.staffing: N_("Experienced, specialised staff"),
    NeedKind.other: N_("Another need"),
}
STATUSES = {NeedStatus.open: N_("Need still open"), NeedStatus.addressed: N_("Need addressed")}
# A facet of the vocabulary, as the pages name it, and the vocabulary whose labels it shows.
FACETS: dict[str, tuple[str, Any]] = {
    "target_group": (N_("Target group"), TargetGroup),
    "setting": (N_("Setting"), Setting),
    "area": (N_("Areas of work"), Area),
    "intervention_type": (N_("Intervention type"), InterventionType),
}
FIELD_LABELS = {
    "organisation_id": N_("Organisation"),
    "kind": N_("Kind of need"),
    "description": N_("Description"),
    "target_groups": N_("Target group"),
    "settings": N_("Setting"),
    "areas": N_("Areas of work"),
    "intervention_types": N_("Intervention type"),
    "status": N_("Status"),
    "status_note": N_("How it was addressed"),
}


async def _organisations(session: AsyncSession, by: Principal) -> list[tuple[str, str]]:
    """The organisations this user may record needs for (an administrator: every one)."""
    query = select(Organisation.id, Organisation.name).where(Organisation.status != "archived")
    if not by.is_admin:
        query = query.where(Organisation.id.in_(list(by.organisation_ids)))
    rows = await session.execute(query.order_by(Organisation.name))
    return [(str(row.id), row.name) for row in rows]


async def _needs_page(
    request: Request,
    session: AsyncSession,
    by: Principal,
    *,
    problems: dict[str, Problem] | None = None,
    typed: dict[str, Any] | None = None,
    status_problems: dict[str, dict[str, Problem]] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    needs = await service.list_needs(session, by=by, limit=200)
    options = {
        FIELDS[facet]: [(m.value, label(vocabulary, m.value)) for m in vocabulary]
        for facet, (_title, vocabulary) in FACETS.items()
    }
    context = {
        "organisations": await _organisations(session, by),
        "needs": await service.need_reads(session, needs),
        "kinds": KINDS,
        "statuses": STATUSES,
        "facets": FACETS,
        "options": options,
        "problems": problems or {},
        "status_problems": status_problems or {},
        "typed": typed or {},
        "labels": FIELD_LABELS,
        "done": request.query_params.get("done", "")[:20],
    }
    return page(request, "needs/page.html", context, status_code=status_code)


@router.get("/needs", response_class=HTMLResponse)
async def needs_page(request: Request, session: SessionDep, by: SignedIn) -> HTMLResponse:
    """The form to record a need, and the needs of your organisations."""
    return await _needs_page(request, session, by)


@router.post("/needs", response_class=HTMLResponse)
async def record_need(request: Request, session: SessionDep, by: SignedIn) -> Response:
    form = await request.form()
    values: dict[str, Any] = {
        "organisation_id": forms.text(form, "organisation_id"),
        "kind": forms.text(form, "kind"),
        "description": forms.text(form, "description"),
        "shared": not forms.ticked(form, "national"),
        **{field: forms.chosen(form, field) for field in FIELDS.values()},
    }

    async def store(data: NeedCreate) -> Any:
        return await service.create_need(session, data, by=by)

    outcome = await forms.submit(NeedCreate, values, store)
    if outcome.problems:
        return await _needs_page(
            request, session, by, problems=outcome.problems, typed=values, status_code=422
        )
    return RedirectResponse("/needs?done=recorded#your-needs", status_code=303)


@router.post("/needs/{need_id}/status", response_class=HTMLResponse)
async def change_status(
    need_id: str, request: Request, session: SessionDep, by: SignedIn
) -> Response:
    wanted = forms.parse_id(need_id, "need")
    await service.get_need(session, wanted, by=by)  # another organisation's: not found
    form = await request.form()
    values = {"status": forms.text(form, "status"), "status_note": forms.text(form, "status_note")}

    async def store(data: NeedUpdate) -> Any:
        return await service.update_need(session, wanted, data, by=by)

    outcome = await forms.submit(NeedUpdate, {k: v for k, v in values.items() if v}, store)
    if outcome.problems:
        found = {str(wanted): outcome.problems}
        return await _needs_page(request, session, by, status_problems=found, status_code=422)
    return RedirectResponse(f"/needs?done=status#need-{wanted}", status_code=303)


@router.get("/needs/summary", response_class=HTMLResponse)
async def summary_page(request: Request, session: SessionDep, _by: Admin) -> HTMLResponse:
    """The National Point's view: every need counted by kind, organisation and term."""
    summary = await service.summary(session)
    by_kind: dict[str, list[Any]] = {}
    for group in summary.groups:
        by_kind.setdefault(group.kind, []).append(group)
    context = {
        "summary": summary,
        "by_kind": by_kind,
        "kinds": KINDS,
        "facets": FACETS,
    }
    return page(request, "needs/summary.html", context)


@router.get("/eu/needs", response_class=HTMLResponse)
async def eu_needs_page(request: Request, session: SessionDep) -> HTMLResponse:
    """What every node shares of its needs, as the hub (or a node mirroring it) holds it."""
    records = await needs_summaries(session)
    held = [(r.origin, r.body or {}) for r in records]
    context = {
        "countries": [origin for origin, _ in held],
        "needs": combine(held, set()),
        "kinds": KINDS,
        "facets": FACETS,
        "min_organisations": max((b.get("min_organisations", 0) for _, b in held), default=0),
    }
    return page(request, "needs/eu.html", context)
