"""The search page, landing page of node and hub: one box, facets, snippets, keyset paging.

A node searches its own published practices, and its study-visit reports for a signed-in
reader (who alone may read them); the hub searches the EU pool it holds (practices and
reports), and a node that mirrors a hub offers both ("this country / EU-wide", `scope=eu`).
The record type (`type=practice`, `type=study_visit`) is a facet with its counts, as the
others (`practices.search.visits`). Every choice is in the URL
(`?q=…&kind=tool&country=GR&sort=date&scope=eu&type=study_visit`), so a search is a link. With
htmx, typing and ticking replace only the results (`_results.html`); without JavaScript the
same URL is a plain GET form.
"""

import re
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from federation.pool import pool_source
from node.core.deps import SessionDep
from node.core.settings import Role
from node.web.deps import WebPrincipal
from node.web.i18n import N_, language_of
from node.web.labels import FACET_VOCABULARY
from node.web.pool import mirrored_hubs
from node.web.render import page
from practices.search import service as search
from practices.search.port import FACETS, SearchQuery, Sort
from practices.search.visits import TYPE_FACET, TYPES, search_records, type_facet, with_types
from practices.visit_index import LOCAL_VISITS

router = APIRouter()
CODE = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")
TWO_LETTERS = re.compile(r"^[A-Za-z]{2}$")
PAGE_SIZE = 20
FACET_TITLES = {
    TYPE_FACET: N_("Practices and reports"),
    "country": N_("Country"),
    "kind": N_("Type of record"),
    "intervention_type": N_("Intervention type"),
    "setting": N_("Setting"),
    "target_group": N_("Target group"),
    "process_focus": N_("Process focus"),
    "evaluation_type": N_("Evaluation"),
    "language": N_("Language"),
    "licence": N_("Licence"),
}


def chosen_filters(request: Request, *, pooled: bool) -> dict[str, list[str]]:
    """The facet values in the URL that can be values of their facet; others are dropped."""
    chosen: dict[str, list[str]] = {}
    for facet in FACETS:
        values = request.query_params.getlist(facet)
        vocabulary = FACET_VOCABULARY.get(facet)
        if facet in ("country", "language"):
            kept = [v for v in values if TWO_LETTERS.match(v)]
        elif vocabulary is not None and not pooled:
            kept = [v for v in values if v in vocabulary.__members__.values()]
        else:
            kept = [v for v in values if CODE.match(v)]
        if kept:
            chosen[facet] = list(dict.fromkeys(kept))
    return chosen


def chosen_types(request: Request) -> list[str]:
    """The record types in the URL (`type=practice`, `type=study_visit`); others dropped."""
    return list(dict.fromkeys(t for t in request.query_params.getlist(TYPE_FACET) if t in TYPES))


def _link(q: str, sort: str, filters: dict[str, list[str]], scope: str, **extra: str) -> str:
    params: list[tuple[str, str]] = [("q", q)] if q else []
    params += [(f, v) for f, values in filters.items() for v in values]
    if sort != "relevance":
        params.append(("sort", sort))
    if scope == "eu":
        params.append(("scope", "eu"))
    params += list(extra.items())
    return "/?" + urlencode(params) if params else "/"


@router.get("/", response_class=HTMLResponse)
async def search_page(request: Request, session: SessionDep, by: WebPrincipal) -> HTMLResponse:
    hub = request.app.state.settings.role == Role.hub
    mirroring = not hub and bool(await mirrored_hubs(session))
    scope = "eu" if mirroring and request.query_params.get("scope") == "eu" else "country"
    pooled = hub or scope == "eu"
    q = request.query_params.get("q", "")[:500].strip()
    sort: Sort = "date" if request.query_params.get("sort") == "date" else "relevance"
    cursor = request.query_params.get("cursor", "")[:200] or None
    filters = chosen_filters(request, pooled=pooled)
    types = chosen_types(request)
    query = SearchQuery(
        text=q,
        filters=search.facet_filters(**filters),
        sort=sort,
        limit=PAGE_SIZE,
        cursor=cursor,
        languages=(language_of(request),),  # the reader's words analysed in their language first
    )
    index = request.app.state.search
    results: search.Results[Any]
    readable: tuple[str, ...] = TYPES
    if pooled:
        pool = pool_source(signed_in=by.is_signed_in)  # `network` records: signed in only
        typed = with_types(query.filters, types)
        if typed is None:  # a kind of practice, of reports only: nothing
            results = search.Results([], 0, {}, None)
        else:
            results = await search.search(session, index, pool, replace(query, filters=typed))
        type_facet(results.facets)
    else:
        found = await search_records(session, index, query, visits=LOCAL_VISITS, types=types, by=by)
        results, readable = found.results, found.readable
    chosen = filters | ({TYPE_FACET: types} if types else {})
    facets = [
        (
            facet,
            FACET_TITLES[facet],
            FACET_VOCABULARY.get(facet),
            [(v.value, v.count, v.value in chosen.get(facet, [])) for v in results.facets[facet]],
        )
        for facet in (TYPE_FACET, *FACETS)
        if results.facets.get(facet) and (facet != TYPE_FACET or len(readable) > 1)
    ]
    if types == ["study_visit"]:
        counting = "study_visit"
    elif len(readable) > 1 and types != ["practice"]:
        counting = "record"
    else:
        counting = "practice"
    context = {
        "q": q,
        "sort": sort,
        "cursor": cursor,
        "pooled": pooled,
        "mirroring": mirroring,
        "scope": scope,
        "results": results,
        "facets": facets,
        "chosen": chosen,
        "counting": counting,
        "next_link": _link(q, sort, chosen, scope, cursor=results.next_cursor)
        if results.next_cursor
        else None,
        "first_link": _link(q, sort, chosen, scope) if cursor else None,
    }
    partial = request.headers.get("hx-request") == "true" and not request.headers.get("hx-boosted")
    return page(request, "search/_partial.html" if partial else "search/page.html", context)
