"""The National Point's administration: the review queue of records the personal-data gate
holds, and the audit log.

Each held record is shown with the words the gate found in the text around them (the
federation's `holds` service keeps both); the administrator fixes the text (the record's edit
page: a new version is scanned again) or releases it as it is, with a justification that goes
into the audit log.
"""

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from federation import holds
from federation.models import GateHold
from federation.schemas import Release
from node.core import audit
from node.core.deps import SessionDep
from node.core.errors import AppError
from node.web import editing, forms, visit_form
from node.web.guards import Admin
from node.web.i18n import N_
from node.web.render import page
from practices.models import Practice
from practices.study_visits.models import StudyVisit

router = APIRouter()
AUDIT_PAGE = 50
# Where the text of a held record is fixed, and where it is read.
EDIT = {"practice": "/practices/{id}/edit", "study_visit": "/study-visits/{id}/edit/1"}
READ = {"practice": "/practices/{id}", "study_visit": "/study-visits/{id}"}
RECORD_TYPES = {"practice": N_("Practice"), "study_visit": N_("Study-visit report")}
# Where a held word was found, as the record's form names the field.
FIELD_LABELS = {"practice": editing.FIELD_LABELS, "study_visit": visit_form.FIELD_LABELS}
# The gate's detectors (each hit names its own in English: the msgid), as a reviewer reads them.
DETECTORS = {
    name: name
    for name in (
        N_("an e-mail address"),
        N_("a bank account number (IBAN)"),
        N_("a phone number"),
        N_("a name of a person this node knows"),
        N_("a national identity number"),
        N_("a date of birth"),
        N_("a street address"),
        N_("a vehicle number plate"),
        N_("a case or file number"),
        N_("an IP address"),
        N_("a messaging handle"),
        N_("a text too long to scan"),
        N_("a record whose scan ran out of time or checks (budget exhausted)"),
        N_("not shareable"),
    )
}


@router.get("/admin", response_class=HTMLResponse)
async def overview(request: Request, by: Admin) -> HTMLResponse:
    return page(request, "admin/overview.html", {})


async def _titles(session: AsyncSession, rows: list[GateHold]) -> dict[uuid.UUID, str]:
    titles: dict[uuid.UUID, str] = {}
    for model, kind in ((Practice, "practice"), (StudyVisit, "study_visit")):
        ids = [h.record_id for h in rows if h.record_type == kind]
        if ids:
            found = await session.execute(select(model.id, model.title).where(model.id.in_(ids)))
            titles |= {row.id: row.title for row in found}
    return titles


async def _queue_page(
    request: Request,
    session: AsyncSession,
    by: Any,
    *,
    problems: dict[int, dict[str, forms.Problem]] | None = None,
    justification: dict[int, str] | None = None,
    released: int | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    rows = list(await holds.review_queue(session, by, "held"))
    context = {
        "holds": rows,
        "titles": await _titles(session, rows),
        "edit": EDIT,
        "read": READ,
        "record_types": RECORD_TYPES,
        "detectors": DETECTORS,
        "field_labels": FIELD_LABELS,
        "problems": problems or {},
        "justification": justification or {},
        "released": released,
    }
    return page(request, "admin/review.html", context, status_code=status_code)


@router.get("/admin/review", response_class=HTMLResponse)
async def review_queue(
    request: Request, session: SessionDep, by: Admin, released: int | None = None
) -> HTMLResponse:
    return await _queue_page(request, session, by, released=released)


@router.post("/admin/review/{hold_id}/release", response_class=HTMLResponse)
async def release(request: Request, session: SessionDep, by: Admin, hold_id: int) -> Response:
    said = forms.text(await request.form(), "justification") or ""
    try:
        data = Release(justification=said)
        await holds.release(session, hold_id, justification=data.justification, by=by)
    except ValidationError as error:
        problems = {hold_id: {"justification": next(iter(forms.problems_of(error).values()))}}
        return await _queue_page(
            request,
            session,
            by,
            problems=problems,
            justification={hold_id: said},
            status_code=422,
        )
    except AppError as error:
        problems = {hold_id: {"justification": next(iter(forms.problem_of(error).values()))}}
        return await _queue_page(request, session, by, problems=problems, status_code=409)
    return RedirectResponse(f"/admin/review?released={hold_id}", status_code=303)


@router.get("/admin/audit", response_class=HTMLResponse)
async def audit_log(
    request: Request,
    session: SessionDep,
    by: Admin,
    action: str = "",
    entity_type: str = "",
    entity_id: str = "",
    actor: str = "",
    after: int | None = None,
) -> HTMLResponse:
    filters = {
        "action": action.strip()[:40] or None,
        "entity_type": entity_type.strip()[:40] or None,
        "entity_id": entity_id.strip()[:64] or None,
        "actor": actor.strip()[:320] or None,
    }
    entries = await audit.list_entries(session, after_id=after, limit=AUDIT_PAGE + 1, **filters)
    more = entries[AUDIT_PAGE - 1].id if len(entries) > AUDIT_PAGE else None
    context = {
        "entries": entries[:AUDIT_PAGE],
        "filters": {k: v or "" for k, v in filters.items()},
        "more": more,
    }
    return page(request, "admin/audit.html", context)
