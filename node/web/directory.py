"""The registry directory: organisations with the API's filters and keyset paging, the
protocols between them, and the registry's exports without personal data.

The list is the API's query (`registry.repository.list_organisations` with the same
`OrganisationFilter`, in name order, the cursor encoded alike); a value that is not a code of
its vocabulary is dropped, as the search page drops one. The exports are the CLI's
(`integra registry export` without `--include-contacts`): CSV, re-importable JSON, Open
Referral HSDS.
"""

import json
import re
import uuid
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from node.core.deps import SessionDep
from node.core.errors import NotFound
from node.core.pagination import decode_keyset, encode_cursor
from node.core.text import fold
from node.web import i18n
from node.web.deps import WebPrincipal
from node.web.i18n import N_
from node.web.render import page
from registry import repository, service, transfer
from registry.hsds import export_hsds
from registry.repository import OrganisationFilter
from registry.vocabulary import Area, Level, OrganisationKind, TargetGroup

router = APIRouter()
PAGE_SIZE = 25
TWO_LETTERS = re.compile(r"^[A-Za-z]{2}$")
# The filters of the directory, each a vocabulary of the registry (and its title).
FILTERS: list[tuple[str, str, type[Any]]] = [
    ("kind", N_("Type of organisation"), OrganisationKind),
    ("area", N_("Areas of work"), Area),
    ("target_group", N_("Target group"), TargetGroup),
    ("level", N_("Level"), Level),
]
# The languages an organisation may be filtered by: the EU's official languages, each shown
# by its name in the reader's language.
LANGUAGE_CODES = "bg cs da de el en es et fi fr ga hr hu it lt lv mt nl pl pt ro sk sl sv".split()
EXPORTS = {
    "csv": ("text/csv; charset=utf-8", "registry.csv"),
    "json": ("application/json", "registry.json"),
    "hsds": ("application/json", "registry-hsds.json"),
}


def _chosen(request: Request) -> dict[str, list[str]]:
    chosen: dict[str, list[str]] = {}
    for name, _title, vocabulary in FILTERS:
        codes = set(vocabulary.__members__.values())
        kept = [v for v in request.query_params.getlist(name) if v in codes]
        if kept:
            chosen[name] = list(dict.fromkeys(kept))
    languages = [v for v in request.query_params.getlist("language") if v in LANGUAGE_CODES]
    if languages:
        chosen["language"] = list(dict.fromkeys(languages))
    countries = [c.upper() for c in request.query_params.getlist("country") if TWO_LETTERS.match(c)]
    if countries:
        chosen["country"] = countries
    region = request.query_params.get("region", "").strip()[:200]
    if region and region.isprintable():
        chosen["region"] = [region]
    q = request.query_params.get("q", "").strip()[:200]
    if q and q.isprintable():
        chosen["q"] = [q]
    return chosen


@router.get("/organisations", response_class=HTMLResponse)
async def directory_page(request: Request, session: SessionDep, by: WebPrincipal) -> HTMLResponse:
    chosen = _chosen(request)
    reader = i18n.language_of(request)
    cursor = request.query_params.get("cursor", "")[:300] or None
    filters = OrganisationFilter(
        kind=chosen.get("kind", []),
        level=chosen.get("level", []),
        country=chosen.get("country", []),
        region=chosen.get("region", []),
        area=chosen.get("area", []),
        target_group=chosen.get("target_group", []),
        language=chosen.get("language", []),
        q=chosen.get("q", [None])[0],
    )
    rows = await repository.list_organisations(
        session, filters, after=decode_keyset(cursor), limit=PAGE_SIZE + 1
    )
    params = [(name, value) for name, values in chosen.items() for value in values]
    last = rows[PAGE_SIZE - 1] if len(rows) > PAGE_SIZE else None
    next_cursor = encode_cursor([last.name, str(last.id)]) if last else None
    context = {
        "organisations": [service.organisation_read(o) for o in rows[:PAGE_SIZE]],
        "filters": FILTERS,
        "languages": sorted(
            ((code, i18n.language_name(code, reader)) for code in LANGUAGE_CODES),
            key=lambda pair: fold(pair[1]),
        ),
        "chosen": chosen,
        "next_link": "/organisations?" + urlencode([*params, ("cursor", next_cursor)])
        if next_cursor
        else None,
        "first_link": ("/organisations?" + urlencode(params)) if cursor else None,
    }
    return page(request, "registry/directory.html", context)


@router.get("/protocols/{protocol_id}", response_class=HTMLResponse)
async def protocol_page(
    protocol_id: str, request: Request, session: SessionDep, by: WebPrincipal
) -> HTMLResponse:
    try:
        wanted = uuid.UUID(protocol_id)
    except ValueError:
        raise NotFound(f"No protocol with id {protocol_id[:60]}.") from None
    protocol = await service.get_protocol(session, wanted)
    [read] = await service.protocol_reads(session, [protocol])
    return page(request, "registry/protocol.html", {"p": read})


@router.get("/registry/export.{format}")
async def registry_export(format: str, session: SessionDep) -> Response:
    """The whole registry without contact points (no personal data), as the CLI writes it."""
    if format not in EXPORTS:
        raise NotFound(f"No export as {format[:20]}: csv, json or hsds.")
    organisations, protocols = await transfer.load_everything(session, with_contacts=False)
    if format == "hsds":
        text = json.dumps(export_hsds(organisations, with_contacts=False), ensure_ascii=False)
    else:
        document = transfer.export_document(organisations, protocols, with_contacts=False)
        text = (
            transfer.export_csv(document)
            if format == "csv"
            else json.dumps(document, ensure_ascii=False)
        )
    media_type, filename = EXPORTS[format]
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    return Response(text, media_type=media_type, headers=headers)
