"""Federation operations in the browser.

On the hub: each enrolled node's sync state (last success, how long ago, failures and the
backoff before the next attempt, its last error, entries refused with their reasons, its keys
and their rotations), enrolment of a node by its address and the fingerprint of its key, and
revocation of a key. On a node: its own signed feed (what it holds, what waits, what the gate
holds, what failed) and its signing keys' fingerprints, to read out to the hub's operator.

Enrolment asks the node at the address for its keys and trusts only the one whose
fingerprint, computed here from the public key received, is the one the operator typed (read
out by the node's operator out of band): a wrong address or a key swapped on the way is
refused. The actions are the CLI's (`federation.trust`), audited alike.
"""

import re
from datetime import datetime
from typing import Any

import anyio
import httpx
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from federation import keys, repository, trust
from federation.feed import FederationNotConfigured
from federation.models import FeedEntry, PeerSync
from federation.reconcile import status as feed_status
from federation.sync import SyncError, fetch_json
from federation.sync.client import Limits, peer_url_problem
from node.core.db import utcnow
from node.core.deps import SessionDep
from node.core.errors import AppError, NotFound
from node.core.settings import Settings
from node.web import forms
from node.web.forms import Problem
from node.web.guards import Admin
from node.web.i18n import N_
from node.web.render import page

router = APIRouter()
COUNTRY = re.compile(r"^[A-Z]{2}$")
FETCH_TIMEOUT = 15.0  # seconds for the node's list of keys
REFUSALS_SHOWN = 200


def _state(state: PeerSync | None) -> str:
    """How a peer's sync stands, as the status column says it."""
    if state is None or (state.last_success_at is None and state.last_attempt_at is None):
        return "waiting"
    failing = state.last_error and (
        state.last_success_at is None
        or (state.last_attempt_at is not None and state.last_attempt_at > state.last_success_at)
    )
    if failing:
        return "failing"
    return "stale" if state.stale_reason else "healthy"


STATES = {
    "waiting": N_("not synced yet"),
    "failing": N_("failing"),
    "stale": N_("stale"),
    "healthy": N_("in step"),
}


def _minutes(since: datetime | None) -> int | None:
    return None if since is None else max(0, int((utcnow() - since).total_seconds() // 60))


async def _peers(session: AsyncSession) -> list[dict[str, Any]]:
    rows = await repository.peer_status(session)
    return [
        {
            "peer": peer,
            "state": state,
            "status": _state(state),
            "held": held,
            "refused": refused,
            "lag": _minutes(state.last_success_at if state else None),
        }
        for peer, state, held, refused in rows
    ]


async def _feed(session: AsyncSession, settings: Settings) -> dict[str, Any] | None:
    if not settings.country:
        return None
    size, last = (
        await session.execute(select(func.count(), func.max(FeedEntry.seq)).select_from(FeedEntry))
    ).one()
    try:
        status = await session.run_sync(lambda sync: feed_status(sync, settings))
    except FederationNotConfigured:
        return None
    return {"size": size, "last": last or 0, "status": status}


async def _page(
    request: Request,
    session: AsyncSession,
    *,
    enrol: dict[str, str] | None = None,
    problems: dict[str, Problem] | None = None,
    done: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    signing = await trust.signing_keys(session)
    context = {
        "peers": await _peers(session),
        "states": STATES,
        "feed": await _feed(session, settings) if settings.role != "hub" else None,
        "signing": [(k, keys.fingerprint(k.key_id)) for k in signing],
        "enrol": enrol or {},
        "problems": problems or {},
        "done": done,
    }
    return page(request, "admin/federation.html", context, status_code=status_code)


@router.get("/admin/federation", response_class=HTMLResponse)
async def federation_page(
    request: Request, session: SessionDep, by: Admin, done: str = ""
) -> HTMLResponse:
    return await _page(request, session, done=done[:40] or None)


def _fetch_keys(url: str, settings: Settings) -> Any:
    limits = Limits.of(settings)
    with httpx.Client(follow_redirects=False) as client:
        return fetch_json(client, f"{url}/federation/v1/keys", timeout=FETCH_TIMEOUT, limits=limits)


def _same(a: str, b: str) -> bool:
    return "".join(a.split()).lower() == "".join(b.split()).lower()


async def _key_of(url: str, country: str, fingerprint: str, settings: Settings) -> Any:
    """The node's active key whose fingerprint is the one typed, or the field at fault."""
    try:
        published = await anyio.to_thread.run_sync(_fetch_keys, url, settings)
    except (SyncError, httpx.HTTPError, ValueError) as error:
        message = N_("No answer from a node at this address: %(reason)s")
        raise _Refused("url", message, error) from None
    if not isinstance(published, dict) or published.get("origin") != country:
        found = published.get("origin") if isinstance(published, dict) else None
        raise _Refused("country", N_("The node at this address speaks for %(reason)s."), found)
    for item in published.get("keys") or []:
        if not isinstance(item, dict) or item.get("retired_at"):
            continue
        try:
            [key] = trust.parse_public_keys([str(item.get("public_key", ""))])
        except AppError:
            continue
        if _same(keys.fingerprint(key.key_id), fingerprint):
            return key
    raise _Refused("fingerprint", N_("No active key of this node has this fingerprint."), None)


class _Refused(Exception):
    def __init__(self, field: str, message: str, reason: object) -> None:
        super().__init__(message)
        self.problem = {field: Problem(message, {"reason": str(reason)[:300]})}


@router.post("/admin/federation/enrol", response_class=HTMLResponse)
async def enrol(request: Request, session: SessionDep, by: Admin) -> Response:
    settings: Settings = request.app.state.settings
    form = await request.form()
    given = {
        "country": (forms.text(form, "country") or "").upper(),
        "url": (forms.text(form, "url") or "").rstrip("/"),
        "fingerprint": forms.text(form, "fingerprint") or "",
    }
    problems: dict[str, Problem] = {}
    if not COUNTRY.match(given["country"]):
        problems["country"] = Problem(N_("Two letters, e.g. GR."))
    url_problem = peer_url_problem(given["url"], allow_insecure=settings.allow_insecure_peers)
    if url_problem:
        problems["url"] = forms.said(url_problem)
    if not given["fingerprint"]:
        problems["fingerprint"] = Problem(N_("This field is required."))
    if not problems:
        try:
            key = await _key_of(given["url"], given["country"], given["fingerprint"], settings)
            await trust.enrol_peer(
                session,
                origin=given["country"],
                url=given["url"],
                public_keys=[key],
                allow_insecure=settings.allow_insecure_peers,
                by=by,
            )
        except _Refused as refused:
            problems = refused.problem
        except AppError as error:
            problems = forms.problem_of(error, "url")
        else:
            return RedirectResponse(f"/admin/federation?done=enrolled-{given['country']}", 303)
    return await _page(request, session, enrol=given, problems=problems, status_code=422)


@router.get("/admin/federation/nodes/{origin}", response_class=HTMLResponse)
async def node_page(request: Request, session: SessionDep, by: Admin, origin: str) -> HTMLResponse:
    peer = await repository.peer_by_origin(session, origin.upper()[:2])
    if peer is None:
        raise NotFound(f"No enrolled node {origin[:10]}.")
    state = await session.get(PeerSync, peer.id)
    refusals = await repository.refusals(session, peer.id, after=0, limit=REFUSALS_SHOWN)
    peer_keys = [
        (k, keys.fingerprint(k.key_id)) for k in await trust.peer_keys(session)
        if k.origin == peer.origin
    ]  # fmt: skip
    context = {
        "peer": peer,
        "state": state,
        "status": _state(state),
        "states": STATES,
        "lag": _minutes(state.last_success_at if state else None),
        "refusals": refusals,
        "peer_keys": peer_keys,
        "problems": {},
    }
    return page(request, "admin/node.html", context)


@router.post("/admin/federation/keys/{key_id}/revoke", response_class=HTMLResponse)
async def revoke(request: Request, session: SessionDep, by: Admin, key_id: str) -> Response:
    form = await request.form()
    if not forms.ticked(form, "confirm"):
        return RedirectResponse("/admin/federation?done=not-confirmed", 303)
    revoked = await trust.revoke_peer_key(session, key_id=key_id[:64], by=by)
    return RedirectResponse(f"/admin/federation?done=revoked-{len(revoked)}", 303)


@router.post("/admin/federation/keys/{key_id}/confirm", response_class=HTMLResponse)
async def confirm(request: Request, session: SessionDep, by: Admin, key_id: str) -> Response:
    fingerprint = forms.text(await request.form(), "fingerprint") or ""
    try:
        origin = await trust.confirm_peer_key(
            session, key_id=key_id[:64], fingerprint=fingerprint, by=by
        )
    except AppError:
        return RedirectResponse("/admin/federation?done=fingerprint-refused", 303)
    return RedirectResponse(f"/admin/federation/nodes/{origin}", 303)
