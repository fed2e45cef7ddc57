"""Registry editing: editors keep their organisations, their contact points and the protocols
they are party to; administrators keep everything. This module holds the registry page, the
organisation forms and what every registry form shares; contact points and protocols are in
`registry_contacts`.

Each form is read into the values the API takes, validated by the API's schema and stored by
the registry's service (the same rules, the same audit entries); a refusal is shown beside its
field. Every form carries the version it was drawn from: when someone else saved meanwhile
(the service's 412), the page shows the current values beside the user's and offers to apply
them again over the new version.
"""

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import ColumnElement, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from node.core.auth import Principal
from node.core.deps import SessionDep
from node.core.text import fold
from node.web import forms, i18n
from node.web.forms import Problem
from node.web.guards import Admin, NotAllowed, Staff
from node.web.i18n import N_
from node.web.labels import label
from node.web.render import page
from registry import service
from registry.models import ContactPoint, Organisation, Protocol, ProtocolParty
from registry.schemas import OrganisationCreate, OrganisationUpdate
from registry.vocabulary import (
    Area,
    Level,
    MeetingFrequency,
    OrganisationKind,
    ProtocolStatus,
    Sector,
    TargetGroup,
)

router = APIRouter()
# A contact point not verified for this long is due for a check.
VERIFY_EVERY = timedelta(days=365)
LISTED = 100  # organisations listed at once on the registry page
# Vocabularies the part-1 labels do not cover.
ORGANISATION_STATUS = {
    "active": N_("Active"),
    "inactive": N_("Inactive"),
    "archived": N_("Archived"),
}
CONTACT_STATUS = {"active": N_("Active"), "archived": N_("Archived")}
PHONE_TYPES = {
    "landline": N_("Landline"),
    "mobile": N_("Mobile"),
    "helpline": N_("Helpline"),
    "fax": N_("Fax"),
}
VOCABULARY_OF: dict[str, Any] = {
    "kind": OrganisationKind,
    "sector": Sector,
    "level": Level,
    "areas": Area,
    "target_groups": TargetGroup,
    "meeting_frequency": MeetingFrequency,
}

ORGANISATION_FIELDS = {
    "name": N_("Name"),
    "ref": N_("Reference"),
    "kind": N_("Type of organisation"),
    "sector": N_("Sector"),
    "level": N_("Level"),
    "country": N_("Country"),
    "region": N_("Region"),
    "description": N_("Description"),
    "legal_basis": N_("Legal basis"),
    "services": N_("Services"),
    "areas": N_("Areas of work"),
    "target_groups": N_("Target group"),
    "languages": N_("Languages"),
    "website": N_("Website"),
    "address": N_("Address"),
    "single_point_of_contact": N_("Single point of contact"),
    "status": N_("Status"),
    "last_verified_date": N_("Last verified"),
}


def _choices(vocabulary: Any) -> list[tuple[str, str]]:
    return [(str(code), label(vocabulary, str(code))) for code in vocabulary]


def form_state(
    values: dict[str, Any],
    *,
    version: int,
    problems: dict[str, Problem] | None = None,
    stale: dict[str, Any] | None = None,
    saved: bool = False,
) -> dict[str, Any]:
    """What every registry form's page shows of the form: its values, the version it was
    drawn from, the refusals by field, an overtaken edit, or that it was saved."""
    return {
        "values": values,
        "version": version,
        "problems": problems or {},
        "stale": stale,
        "saved": saved,
    }


def form_choices(request: Request) -> dict[str, Any]:
    return {
        "kinds": _choices(OrganisationKind),
        "sectors": _choices(Sector),
        "levels": _choices(Level),
        "areas": _choices(Area),
        "target_groups": _choices(TargetGroup),
        "frequencies": _choices(MeetingFrequency),
        "protocol_statuses": _choices(ProtocolStatus),
        "organisation_statuses": list(ORGANISATION_STATUS.items()),
        "contact_statuses": list(CONTACT_STATUS.items()),
        "phone_types": list(PHONE_TYPES.items()),
        "today": date.today().isoformat(),
    }


def _show(request: Request) -> Callable[[str, Any], str]:
    """A value as the comparison of a stale edit shows it, in the reader's language."""
    gettext = i18n.gettext_for(i18n.language_of(request))

    def one(name: str, value: Any) -> str:
        if name in VOCABULARY_OF:
            return gettext(label(VOCABULARY_OF[name], str(value)))
        if name == "status":
            known = ORGANISATION_STATUS | CONTACT_STATUS
            return (
                gettext(known[value])
                if value in known
                else gettext(label(ProtocolStatus, str(value)))
            )
        if name == "phones" and isinstance(value, dict):
            return str(value.get("number") or "")
        if isinstance(value, bool):
            return gettext("Yes") if value else gettext("No")
        return str(value)

    def shown(name: str, value: Any) -> str:
        if value in (None, "", [], {}):
            return "—"
        if isinstance(value, dict) and name != "phones":
            return ", ".join(str(v) for v in value.values() if v)
        if isinstance(value, list):
            return ", ".join(one(name, v) for v in value)
        return one(name, value)

    return shown


def stale_edit(
    request: Request,
    mine: dict[str, Any],
    current: dict[str, Any],
    sent_version: int,
    labels: dict[str, str],
) -> dict[str, Any]:
    """What a page shows of an edit someone else's save overtook."""
    shown = _show(request)
    gettext = i18n.gettext_for(i18n.language_of(request))
    rows = [
        {
            "field": gettext(labels[name]),
            "current": shown(name, current.get(name)),
            "mine": shown(name, mine.get(name)),
        }
        for name in forms.differences(mine, current, labels)
    ]
    return {"sent": sent_version, "current": current["version"], "rows": rows}


# --- the registry page: what an editor keeps, and what is due for a check ------------------


def _editable(by: Principal) -> ColumnElement[bool]:
    """A condition on organisations: those the user may edit (all, for an administrator)."""
    return true() if by.is_admin else Organisation.id.in_(list(by.organisation_ids))


@router.get("/registry/edit", response_class=HTMLResponse)
async def registry_page(
    request: Request, session: SessionDep, by: Staff, q: str = ""
) -> HTMLResponse:
    stmt = select(Organisation).where(_editable(by), Organisation.status != "archived")
    if q.strip():
        stmt = stmt.where(Organisation.search_text.contains(fold(q.strip()[:200])))
    organisations = (await session.scalars(stmt.order_by(Organisation.name).limit(LISTED))).all()
    due = date.today() - VERIFY_EVERY
    contacts = (
        await session.execute(
            select(ContactPoint, Organisation.name)
            .join(Organisation, Organisation.id == ContactPoint.organisation_id)
            .where(
                _editable(by),
                ContactPoint.status == "active",
                or_(
                    ContactPoint.last_verified_date.is_(None),
                    ContactPoint.last_verified_date < due,
                ),
            )
            .order_by(ContactPoint.last_verified_date.is_not(None), ContactPoint.last_verified_date)
            .limit(LISTED)
        )
    ).all()
    parties = select(ProtocolParty.protocol_id).where(
        true() if by.is_admin else ProtocolParty.organisation_id.in_(list(by.organisation_ids))
    )
    protocols = (
        await session.scalars(
            select(Protocol)
            .where(
                Protocol.id.in_(parties),
                Protocol.review_date < date.today(),
                Protocol.status.not_in(("archived", "terminated", "expired")),
            )
            .order_by(Protocol.review_date)
            .limit(LISTED)
        )
    ).all()
    theirs = (
        await session.scalars(
            select(Protocol)
            .where(Protocol.id.in_(parties), Protocol.status != "archived")
            .order_by(Protocol.title)
            .limit(LISTED)
        )
    ).all()
    context = {
        "organisations": organisations,
        "contacts": contacts,
        "protocols": protocols,
        "all_protocols": theirs,
        "q": q,
        "verify_days": VERIFY_EVERY.days,
    }
    return page(request, "registry_edit/registry.html", context)


# --- organisations ------------------------------------------------------------------------


def organisation_values(form: FormData) -> dict[str, Any]:
    """The organisation form as the API's JSON (every field the form shows)."""
    address = {k: forms.text(form, f"address.{k}") for k in service.organisations.ADDRESS_COLUMNS}
    return {
        "name": forms.text(form, "name"),
        "ref": forms.text(form, "ref"),
        "kind": forms.text(form, "kind"),
        "sector": forms.text(form, "sector"),
        "level": forms.text(form, "level"),
        "country": (forms.text(form, "country") or "").upper() or None,
        "region": forms.text(form, "region"),
        "description": forms.text(form, "description"),
        "legal_basis": forms.text(form, "legal_basis"),
        "services": forms.lines(form, "services"),
        "areas": forms.chosen(form, "areas"),
        "target_groups": forms.chosen(form, "target_groups"),
        "languages": [code.lower() for code in forms.lines(form, "languages")],
        "website": forms.text(form, "website"),
        "address": address if any(address.values()) else None,
        "single_point_of_contact": forms.ticked(form, "single_point_of_contact"),
        "status": forms.text(form, "status"),
        "last_verified_date": forms.text(form, "last_verified_date"),
    }


def _organisation_page(
    request: Request,
    organisation: Organisation | None,
    state: dict[str, Any],
    status_code: int = 200,
) -> HTMLResponse:
    context = (
        form_choices(request)
        | state
        | {
            "organisation": organisation,
            "labels": ORGANISATION_FIELDS,
        }
    )
    return page(request, "registry_edit/organisation.html", context, status_code=status_code)


async def organisation_for(session: AsyncSession, organisation_id: str, by: Principal) -> Any:
    organisation = await service.get_organisation(
        session, forms.parse_id(organisation_id, "organisation")
    )
    if not by.may_edit(organisation.id):
        raise NotAllowed()
    return organisation


@router.get("/registry/organisations/new", response_class=HTMLResponse)
async def new_organisation(request: Request, by: Admin) -> HTMLResponse:
    values = {"status": "active", "country": request.app.state.settings.country}
    return _organisation_page(request, None, form_state(values, version=0))


@router.post("/registry/organisations/new", response_class=HTMLResponse)
async def create_organisation(request: Request, session: SessionDep, by: Admin) -> Response:
    values = organisation_values(await request.form())
    done = await forms.submit(
        OrganisationCreate, values, lambda data: service.create_organisation(session, data, by=by)
    )
    if done.record is not None:
        return RedirectResponse(f"/organisations/{done.record.id}/edit?saved=1", status_code=303)
    state = form_state(values, version=0, problems=done.problems)
    return _organisation_page(request, None, state, status_code=422)


@router.get("/organisations/{organisation_id}/edit", response_class=HTMLResponse)
async def edit_organisation(
    request: Request, session: SessionDep, by: Staff, organisation_id: str, saved: str = ""
) -> HTMLResponse:
    organisation = await organisation_for(session, organisation_id, by)
    values = service.organisation_read(organisation).model_dump(mode="json")
    state = form_state(values, version=organisation.version, saved=bool(saved))
    return _organisation_page(request, organisation, state)


@router.post("/organisations/{organisation_id}/edit", response_class=HTMLResponse)
async def save_organisation(
    request: Request, session: SessionDep, by: Staff, organisation_id: str
) -> Response:
    organisation = await organisation_for(session, organisation_id, by)
    form = await request.form()
    values, sent = organisation_values(form), forms.version(form)
    done = await forms.submit(
        OrganisationUpdate,
        values,
        lambda data: service.update_organisation(
            session, organisation.id, data, expected_version=sent, by=by
        ),
    )
    if done.stale:
        current = service.organisation_read(organisation).model_dump(mode="json")
        stale = stale_edit(request, values, current, sent, ORGANISATION_FIELDS)
        state = form_state(values, version=organisation.version, stale=stale)
        return _organisation_page(request, organisation, state, status_code=412)
    if done.record is not None:
        return RedirectResponse(f"/organisations/{organisation.id}/edit?saved=1", 303)
    state = form_state(values, version=sent, problems=done.problems)
    return _organisation_page(request, organisation, state, status_code=422)
