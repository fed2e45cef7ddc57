"""Study-visit reports: the list (filtered by host country, keyset paging) and a report's page.

The API decides who reads them and the pages keep to it, by calling the same code: every
study-visit route needs a signed-in user (`CurrentUser`), so an anonymous visitor is asked to
sign in and sees no report, not even its title; the list is the API's own (published reports
and the reader's drafts, administrators all; every read audited), and a report is read with the
service's rule and audited, as it names its participants. At the hub, reports shared through
the federation carry no participant (the projection removes them) and are found by the EU
search (`/eu/records/…`).
"""

import re
import uuid
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

import registry
from node.core.deps import SessionDep
from node.core.errors import NotFound
from node.web.deps import WebPrincipal
from node.web.render import page
from practices import service as practices
from practices.study_visits import api, service

router = APIRouter()
PAGE_SIZE = 25
TWO_LETTERS = re.compile(r"^[A-Za-z]{2}$")


def _signed_out(request: Request) -> HTMLResponse:
    return page(request, "visits/sign_in_needed.html", {})


@router.get("/study-visits", response_class=HTMLResponse)
async def study_visit_list(request: Request, session: SessionDep, by: WebPrincipal) -> HTMLResponse:
    if not by.is_signed_in:
        return _signed_out(request)
    countries = [
        c.upper() for c in request.query_params.getlist("host_country") if TWO_LETTERS.match(c)
    ]
    cursor = request.query_params.get("cursor", "")[:200] or None
    found = await api.list_study_visits(
        session, by, status=[], host_country=countries, cursor=cursor, limit=PAGE_SIZE
    )
    params = [("host_country", c) for c in countries]
    context = {
        "visits": found.items,
        "countries": countries,
        "next_link": "/study-visits?" + urlencode([*params, ("cursor", found.next_cursor)])
        if found.next_cursor
        else None,
        "first_link": ("/study-visits?" + urlencode(params)) if cursor else None,
    }
    return page(request, "visits/list.html", context)


@router.get("/study-visits/{visit_id}", response_class=HTMLResponse)
async def study_visit_page(
    visit_id: str, request: Request, session: SessionDep, by: WebPrincipal
) -> HTMLResponse:
    try:
        wanted = uuid.UUID(visit_id)
    except ValueError:
        raise NotFound(f"No study-visit report with id {visit_id[:60]}.") from None
    if not by.is_signed_in:
        return _signed_out(request)
    visit = await service.get_study_visit(session, wanted, by=by)
    read = await service.study_visit_read(session, visit, by=by)
    links = [read.organising_authority, *read.host_organisations]
    links += [m.home_organisation for m in read.delegation if m.home_organisation]
    ids = {link.organisation_id for link in links if link.organisation_id}
    names = await registry.organisation_names(session, ids) if ids else {}
    observed: list[tuple[uuid.UUID, str]] = []
    for practice_id in read.observed_practice_ids:
        try:
            practice = await practices.get_practice(session, practice_id, by=by)
        except NotFound:
            continue
        observed.append((practice.id, practice.title))
    context: dict[str, Any] = {"v": read, "names": names, "observed": observed}
    return page(request, "visits/report.html", context)
