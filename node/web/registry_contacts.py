"""Registry editing, continued: the contact points of an organisation and the protocols its
editors are party to (the registry page, the organisation forms and what every form shares are
in `registry_edit`). Phone numbers are typed as people write them in the organisation's
country; the service stores them in international form.
"""

from typing import Any

import phonenumbers
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from node.core.auth import Principal
from node.core.deps import SessionDep
from node.core.errors import NotFound
from node.web import forms
from node.web.forms import Problem
from node.web.guards import NotAllowed, Staff
from node.web.i18n import N_
from node.web.labels import label
from node.web.registry_edit import form_choices, form_state, organisation_for, stale_edit
from node.web.render import page
from registry import service
from registry.models import ContactPoint, Organisation, Protocol
from registry.schemas import (
    ContactPointCreate,
    ContactPointUpdate,
    ProtocolCreate,
    ProtocolUpdate,
)
from registry.vocabulary import PartyRole

router = APIRouter()
PARTY_ROWS = 4  # the parties' rows a new protocol's form offers
PARTY_ROWS_MAX = 20  # rows read from a form sent
PARTY_CHOICES = 1000  # organisations offered as parties
PHONE_ROWS = 3  # phone lines a form offers beyond those recorded
CONTACT_FIELDS = {
    "name": N_("Name"),
    "title": N_("Function"),
    "department": N_("Department"),
    "email": N_("E-mail"),
    "phones": N_("Telephone"),
    "languages": N_("Languages"),
    "hours": N_("Availability"),
    "available_24_7": N_("Available day and night"),
    "is_primary": N_("Main contact"),
    "status": N_("Status"),
    "last_verified_date": N_("Last verified"),
}
PROTOCOL_FIELDS = {
    "title": N_("Title"),
    "ref": N_("Reference"),
    "country": N_("Country"),
    "purpose": N_("Purpose"),
    "principles": N_("Principles"),
    "information_sharing_rules": N_("Rules for sharing information"),
    "reporting_procedure": N_("Reporting procedure"),
    "meeting_frequency": N_("Meetings"),
    "signed_date": N_("Signed"),
    "review_date": N_("Next review"),
    "status": N_("Status"),
    "document_url": N_("Document"),
}


# --- contact points -----------------------------------------------------------------------


def national(number: str, country: str) -> str:
    """A stored (E.164) number as written in the organisation's country, else as stored."""
    try:
        parsed = phonenumbers.parse(number, country)
    except phonenumbers.NumberParseException:
        return number
    if phonenumbers.region_code_for_number(parsed) == country:
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def example_number(country: str) -> str | None:
    example = phonenumbers.example_number(country)
    if example is None:
        return None
    return phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL)


def contact_values(form: FormData) -> dict[str, Any]:
    phones = []
    for index in range(20):
        number = forms.text(form, f"phones.{index}.number")
        if number is None:
            if form.get(f"phones.{index}.type") is None:
                break
            continue
        phones.append({"number": number, "type": forms.text(form, f"phones.{index}.type")})
    return {
        "name": forms.text(form, "name"),
        "title": forms.text(form, "title"),
        "department": forms.text(form, "department"),
        "email": forms.text(form, "email"),
        "phones": phones,
        "languages": [code.lower() for code in forms.lines(form, "languages")],
        "hours": forms.text(form, "hours"),
        "available_24_7": forms.ticked(form, "available_24_7"),
        "is_primary": forms.ticked(form, "is_primary"),
        "status": forms.text(form, "status"),
        "last_verified_date": forms.text(form, "last_verified_date"),
    }


def _contact_page(
    request: Request,
    organisation: Organisation,
    contact: ContactPoint | None,
    state: dict[str, Any],
    status_code: int = 200,
) -> HTMLResponse:
    phones = list(state["values"].get("phones") or [])
    phones += [{"number": "", "type": "landline"}] * (PHONE_ROWS if not phones else 1)
    context = (
        form_choices(request)
        | state
        | {
            "phones": phones,
            "organisation": organisation,
            "contact": contact,
            "example_phone": example_number(organisation.country),
        }
    )
    return page(request, "registry_edit/contact_point.html", context, status_code=status_code)


@router.get("/organisations/{organisation_id}/contact-points", response_class=HTMLResponse)
async def contact_list(
    request: Request, session: SessionDep, by: Staff, organisation_id: str
) -> HTMLResponse:
    organisation = await organisation_for(session, organisation_id, by)
    contacts = await service.list_contact_points(
        session, organisation.id, include_archived=True, by=by
    )
    context = {"organisation": organisation, "contacts": contacts}
    return page(request, "registry_edit/contact_points.html", context)


@router.get("/organisations/{organisation_id}/contact-points/new", response_class=HTMLResponse)
async def new_contact(
    request: Request, session: SessionDep, by: Staff, organisation_id: str
) -> HTMLResponse:
    organisation = await organisation_for(session, organisation_id, by)
    values = {"status": "active", "languages": organisation.languages}
    return _contact_page(request, organisation, None, form_state(values, version=0))


@router.post("/organisations/{organisation_id}/contact-points/new", response_class=HTMLResponse)
async def create_contact(
    request: Request, session: SessionDep, by: Staff, organisation_id: str
) -> Response:
    organisation = await organisation_for(session, organisation_id, by)
    values = contact_values(await request.form())
    done = await forms.submit(
        ContactPointCreate,
        values,
        lambda data: service.create_contact_point(session, organisation.id, data, by=by),
    )
    if done.record is not None:
        return RedirectResponse(f"/contact-points/{done.record.id}/edit?saved=1", 303)
    state = form_state(values, version=0, problems=done.problems)
    return _contact_page(request, organisation, None, state, status_code=422)


async def _contact_for(
    session: AsyncSession, contact_id: str, by: Principal
) -> tuple[ContactPoint, Organisation]:
    contact = await session.get(ContactPoint, forms.parse_id(contact_id, "contact point"))
    if contact is None:
        raise NotFound(f"No contact point with id {contact_id}.")
    organisation = await organisation_for(session, str(contact.organisation_id), by)
    return contact, organisation


def _contact_shown(contact: ContactPoint, country: str) -> dict[str, Any]:
    values = service.contact_point_dict(contact)
    values["phones"] = [p | {"number": national(p["number"], country)} for p in contact.phones]
    values["last_verified_date"] = (
        contact.last_verified_date.isoformat() if contact.last_verified_date else None
    )
    return values


@router.get("/contact-points/{contact_id}/edit", response_class=HTMLResponse)
async def edit_contact(
    request: Request, session: SessionDep, by: Staff, contact_id: str, saved: str = ""
) -> HTMLResponse:
    contact, organisation = await _contact_for(session, contact_id, by)
    await service.read_contact_point(session, contact.id, by=by)  # audited as a read
    values = _contact_shown(contact, organisation.country)
    state = form_state(values, version=contact.version, saved=bool(saved))
    return _contact_page(request, organisation, contact, state)


@router.post("/contact-points/{contact_id}/edit", response_class=HTMLResponse)
async def save_contact(
    request: Request, session: SessionDep, by: Staff, contact_id: str
) -> Response:
    contact, organisation = await _contact_for(session, contact_id, by)
    form = await request.form()
    values, sent = contact_values(form), forms.version(form)
    done = await forms.submit(
        ContactPointUpdate,
        values,
        lambda data: service.update_contact_point(
            session, contact.id, data, expected_version=sent, by=by
        ),
    )
    if done.stale:
        current = _contact_shown(contact, organisation.country) | {"version": contact.version}
        stale = stale_edit(request, values, current, sent, CONTACT_FIELDS)
        state = form_state(values, version=contact.version, stale=stale)
        return _contact_page(request, organisation, contact, state, status_code=412)
    if done.record is not None:
        return RedirectResponse(f"/contact-points/{contact.id}/edit?saved=1", 303)
    state = form_state(values, version=sent, problems=done.problems)
    return _contact_page(request, organisation, contact, state, status_code=422)


# --- protocols ----------------------------------------------------------------------------


def protocol_values(form: FormData) -> dict[str, Any]:
    values: dict[str, Any] = {name: forms.text(form, name) for name in PROTOCOL_FIELDS}
    values["country"] = (values["country"] or "").upper() or None
    return values


def party_values(form: FormData) -> list[dict[str, Any]]:
    """The parties' rows of the new-protocol form (the rows left empty skipped)."""
    parties = []
    for index in range(PARTY_ROWS_MAX):
        organisation = forms.text(form, f"parties.{index}.organisation_id")
        if organisation is None:
            continue
        role = forms.text(form, f"parties.{index}.role") or "party"
        parties.append({"organisation_id": organisation, "role": role, "row": index})
    return parties


async def _protocol_for(session: AsyncSession, protocol_id: str, by: Principal) -> Protocol:
    protocol = await service.get_protocol(session, forms.parse_id(protocol_id, "protocol"))
    if not (by.is_admin or any(by.may_edit(p.organisation_id) for p in protocol.parties)):
        raise NotAllowed()
    return protocol


async def _protocol_page(
    request: Request,
    session: AsyncSession,
    protocol: Protocol,
    state: dict[str, Any],
    status_code: int = 200,
) -> HTMLResponse:
    [read] = await service.protocol_reads(session, [protocol])
    context = form_choices(request) | state | {"protocol": read}
    return page(request, "registry_edit/protocol.html", context, status_code=status_code)


async def _protocol_shown(session: AsyncSession, protocol: Protocol) -> dict[str, Any]:
    [read] = await service.protocol_reads(session, [protocol])
    return read.model_dump(mode="json")


async def _party_choices(session: AsyncSession, by: Principal) -> dict[str, Any]:
    """The organisations a new protocol may name, the editor's own first."""
    rows = (
        await session.execute(
            select(Organisation.id, Organisation.name)
            .where(Organisation.status != "archived")
            .order_by(Organisation.name)
            .limit(PARTY_CHOICES)
        )
    ).all()
    own = [(str(r.id), r.name) for r in rows if by.may_edit(r.id)]
    others = [(str(r.id), r.name) for r in rows if not by.may_edit(r.id)]
    return {"own_organisations": own, "other_organisations": others}


async def _new_protocol_page(
    request: Request,
    session: AsyncSession,
    by: Principal,
    values: dict[str, Any],
    problems: dict[str, Problem] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    rows = {p["row"]: p for p in values.get("parties") or []}
    parties = [
        rows.get(index, {"organisation_id": "", "role": "party"}) for index in range(PARTY_ROWS)
    ]
    context = form_choices(request) | form_state(values, version=0, problems=problems)
    context |= await _party_choices(session, by)
    context |= {"parties": parties, "party_roles": _party_roles()}
    return page(request, "registry_edit/protocol_new.html", context, status_code=status_code)


def _party_roles() -> list[tuple[str, str]]:
    return [(str(code), label(PartyRole, str(code))) for code in PartyRole]


def _party_problems(problems: dict[str, Problem], parties: list[dict[str, Any]]) -> None:
    """The refusals of `parties.<n>.…` (numbered among the rows filled) at the row shown."""
    for name in [n for n in problems if n.startswith("parties.")]:
        _, index, *rest = name.split(".")
        if index.isdigit() and int(index) < len(parties):
            row = parties[int(index)]["row"]
            problems[f"parties.{row}.{rest[0] if rest else 'organisation_id'}"] = problems.pop(name)
    if "parties" in problems and problems["parties"].message in (
        forms.BY_TYPE["too_short"],
        forms.BY_TYPE["missing"],
    ):
        problems["parties"] = Problem(N_("Name at least two parties."))


@router.get("/registry/protocols/new", response_class=HTMLResponse)
async def new_protocol(request: Request, session: SessionDep, by: Staff) -> HTMLResponse:
    values = {"status": "draft", "country": request.app.state.settings.country}
    return await _new_protocol_page(request, session, by, values)


@router.post("/registry/protocols/new", response_class=HTMLResponse)
async def create_protocol(request: Request, session: SessionDep, by: Staff) -> Response:
    form = await request.form()
    values = protocol_values(form)
    parties = party_values(form)
    sent = values | {
        "status": values["status"] or "draft",
        "parties": [{k: v for k, v in p.items() if k != "row"} for p in parties],
    }
    done = await forms.submit(
        ProtocolCreate, sent, lambda data: service.create_protocol(session, data, by=by)
    )
    if done.record is not None:
        return RedirectResponse(f"/protocols/{done.record.id}/edit?saved=1", 303)
    problems = done.problems
    if "form" in problems and "parties" not in problems:  # who may record it: the parties
        problems["parties"] = problems.pop("form")
    _party_problems(problems, parties)
    values["parties"] = parties
    return await _new_protocol_page(request, session, by, values, problems, status_code=422)


@router.get("/protocols/{protocol_id}/edit", response_class=HTMLResponse)
async def edit_protocol(
    request: Request, session: SessionDep, by: Staff, protocol_id: str, saved: str = ""
) -> HTMLResponse:
    protocol = await _protocol_for(session, protocol_id, by)
    values = await _protocol_shown(session, protocol)
    state = form_state(values, version=protocol.version, saved=bool(saved))
    return await _protocol_page(request, session, protocol, state)


@router.post("/protocols/{protocol_id}/edit", response_class=HTMLResponse)
async def save_protocol(
    request: Request, session: SessionDep, by: Staff, protocol_id: str
) -> Response:
    protocol = await _protocol_for(session, protocol_id, by)
    form = await request.form()
    values, sent = protocol_values(form), forms.version(form)
    done = await forms.submit(
        ProtocolUpdate,
        values,
        lambda data: service.update_protocol(
            session, protocol.id, data, expected_version=sent, by=by
        ),
    )
    if done.stale:
        current = await _protocol_shown(session, protocol)
        stale = stale_edit(request, values, current, sent, PROTOCOL_FIELDS)
        state = form_state(values, version=protocol.version, stale=stale)
        return await _protocol_page(request, session, protocol, state, status_code=412)
    if done.record is not None:
        return RedirectResponse(f"/protocols/{protocol.id}/edit?saved=1", 303)
    state = form_state(values, version=sent, problems=done.problems)
    return await _protocol_page(request, session, protocol, state, status_code=422)
