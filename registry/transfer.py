"""Bulk import and export of the registry (CSV, JSON, HSDS-shaped JSON).

An import is idempotent: each row is matched to what is stored (by `ref`, then by identifier,
then by country and name) and only real differences are written, so running the same file
twice changes nothing. Each row is stored or refused on its own.
"""

import csv
import io
import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from node import audit
from node.auth import Principal
from node.errors import AppError
from registry import repository, service
from registry.models import ContactPoint, Organisation, Protocol
from registry.schemas import (
    ContactPointCreate,
    OrganisationCreate,
    OrganisationRead,
    PartyIn,
    ProtocolCreate,
    ProtocolUpdate,
    Ref,
)

LIST_COLUMNS = ("areas", "services", "target_groups", "languages")
ADDRESS_KEYS = ("street", "locality", "postal_code", "region")
CSV_COLUMNS = (
    [
        "ref",
        "name",
        "local_names",
        "identifiers",
        "kind",
        "sector",
        "level",
        "country",
        "region",
        "parent_ref",
        "legal_basis",
        "description",
        *LIST_COLUMNS,
        "website",
    ]
    + [f"address_{k}" for k in ADDRESS_KEYS]
    + ["single_point_of_contact", "status", "last_verified_date"]
)


class OrganisationImport(OrganisationCreate):
    parent_ref: Ref | None = None
    contact_points: list[ContactPointCreate] = []


class PartyImport(BaseModel):
    organisation_ref: Ref
    role: str = "party"
    responsibilities: str | None = None


class ProtocolImport(ProtocolCreate):
    parties: list[PartyImport]  # type: ignore[assignment]


@dataclass
class RowError:
    row: int
    what: str
    reason: str


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def stored(self) -> int:
        return self.created + self.updated + self.unchanged


class FileError(Exception):
    """The file as a whole cannot be read."""


@dataclass
class Row:
    number: int
    data: dict[str, Any]
    kind: str = "organisation"

    @property
    def label(self) -> str:
        return str(self.data.get("ref") or self.data.get("name") or self.data.get("title") or "?")


# --- reading files ------------------------------------------------------------------------


def read_rows(content: bytes, fmt: str) -> list[Row]:
    """Rows numbered as a person finds them: CSV by line (header is line 1), JSON by position."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileError(f"the file is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return _read_csv(text) if fmt == "csv" else _read_json(text)


def _read_json(text: str) -> list[Row]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FileError(f"not valid JSON: {exc.msg} at line {exc.lineno}") from None
    if isinstance(doc, list):
        doc = {"organisations": doc}
    if not isinstance(doc, dict) or not set(doc) <= {"organisations", "protocols"}:
        raise FileError(
            'expected a list of organisations or {"organisations": [...], "protocols": [...]}'
        )
    rows = [Row(i + 1, r) for i, r in enumerate(doc.get("organisations", []))]
    rows += [Row(i + 1, r, "protocol") for i, r in enumerate(doc.get("protocols", []))]
    for row in rows:
        if not isinstance(row.data, dict):
            raise FileError(f"{row.kind} {row.number} is not an object")
    return rows


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(";") if part.strip()]


def _pairs(value: str, keys: tuple[str, str]) -> list[dict[str, str]]:
    out = []
    for part in _split(value):
        left, sep, right = part.partition(":")
        if not sep:
            raise ValueError(f"'{part}' should be written {keys[0]}:{keys[1]}")
        out.append({keys[0]: left.strip(), keys[1]: right.strip()})
    return out


def _read_csv(text: str) -> list[Row]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    unknown = set(reader.fieldnames or []) - set(CSV_COLUMNS)
    if not reader.fieldnames or "name" not in reader.fieldnames:
        raise FileError("the first line must name the columns, including 'name'")
    if unknown:
        raise FileError(f"unknown columns: {', '.join(sorted(unknown))}")
    rows = []
    for record in reader:
        rows.append(Row(reader.line_num, _csv_record(record)))
    return rows


def _csv_record(record: dict[str, str | None]) -> dict[str, Any]:
    values = {k: v.strip() for k, v in record.items() if k is not None and v and v.strip()}
    out: dict[str, Any] = {}
    try:
        for key, value in values.items():
            if key in LIST_COLUMNS:
                out[key] = _split(value)
            elif key == "identifiers":
                out[key] = _pairs(value, ("scheme", "value"))
            elif key == "local_names":
                out[key] = _pairs(value, ("language", "name"))
            elif key.startswith("address_"):
                out.setdefault("address", {})[key.removeprefix("address_")] = value
            else:
                out[key] = value
    except ValueError as exc:
        out["__error__"] = str(exc)
    return out


# --- importing ----------------------------------------------------------------------------


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'row'}: {e['msg']}" for e in exc.errors()
        )
    if isinstance(exc, AppError):
        return exc.detail
    return str(exc)


async def import_rows(
    session: AsyncSession,
    rows: list[Row],
    *,
    by: Principal,
    is_sample: bool = False,
    progress: Callable[[], None] = lambda: None,
) -> ImportReport:
    report = ImportReport()
    refs: dict[str, uuid.UUID] = {}
    parents: list[tuple[Row, uuid.UUID, str]] = []
    for row in (r for r in rows if r.kind == "organisation"):
        await _import_one(session, row, report, _organisation_row, refs, parents, by, is_sample)
        progress()
    for row, org_id, parent_ref in parents:
        await _set_parent(session, row, org_id, parent_ref, refs, report, by)
    for row in (r for r in rows if r.kind == "protocol"):
        await _import_one(session, row, report, _protocol_row, refs, parents, by, is_sample)
        progress()
    return report


async def _import_one(session, row, report, handler, refs, parents, by, is_sample) -> None:  # type: ignore[no-untyped-def]
    try:
        async with session.begin_nested():
            outcome = await handler(session, row, refs, parents, by, is_sample)
    except (ValidationError, AppError, ValueError) as exc:
        report.errors.append(RowError(row.number, f"{row.kind} '{row.label}'", _reason(exc)))
        return
    setattr(report, outcome, getattr(report, outcome) + 1)


async def _match_organisation(
    session: AsyncSession, data: OrganisationImport
) -> Organisation | None:
    if data.ref:
        found = await repository.find_organisation_by_ref(session, data.ref)
        if found:
            return found
    for identifier in data.identifiers:
        found = await repository.find_organisation_by_identifier(
            session, identifier.scheme, identifier.value
        )
        if found:
            return found
    return await repository.find_organisation_by_name(session, data.country, data.name)


async def _organisation_row(session, row, refs, parents, by, is_sample) -> str:  # type: ignore[no-untyped-def]
    if "__error__" in row.data:
        raise ValueError(row.data["__error__"])
    data = OrganisationImport.model_validate(row.data)
    exclude = {"parent_ref", "contact_points", "parent_id"}
    parent_id = await _resolve_ref(session, refs, data.parent_ref)
    existing = await _match_organisation(session, data)
    if existing is None:
        values = data.model_dump(mode="python", exclude=exclude)
        create = OrganisationCreate.model_validate(values | {"parent_id": parent_id})
        organisation = await service.create_organisation(
            session, create, by=by, is_sample=is_sample
        )
        outcome = "created"
    else:
        # Only the columns the file gives are compared: a missing column changes nothing.
        values = data.model_dump(mode="python", exclude=exclude, exclude_unset=True)
        if "parent_ref" in data.model_fields_set and (data.parent_ref is None or parent_id):
            values["parent_id"] = parent_id
        if values.get("website"):
            values["website"] = str(values["website"])
        organisation = existing
        before = organisation.version
        await service.apply_organisation_changes(session, organisation, values, by=by)
        outcome = "updated" if organisation.version != before else "unchanged"
    if await _import_contacts(session, organisation, data.contact_points, by, is_sample):
        outcome = "updated" if outcome == "unchanged" else outcome
    if data.ref:
        refs[data.ref] = organisation.id
    if data.parent_ref is not None and parent_id is None:
        parents.append((row, organisation.id, data.parent_ref))  # defined later in the file
    return outcome


async def _resolve_ref(
    session: AsyncSession, refs: dict[str, uuid.UUID], ref: str | None
) -> uuid.UUID | None:
    if ref is None:
        return None
    if ref in refs:
        return refs[ref]
    found = await repository.find_organisation_by_ref(session, ref)
    return found.id if found else None


async def _set_parent(session, row, org_id, parent_ref, refs, report, by) -> None:  # type: ignore[no-untyped-def]
    parent_id = await _resolve_ref(session, refs, parent_ref)
    if parent_id is None:
        report.errors.append(
            RowError(
                row.number,
                f"organisation '{row.label}'",
                f"parent_ref: no organisation with ref '{parent_ref}'",
            )
        )
        return
    organisation = await service.get_organisation(session, org_id)
    try:
        async with session.begin_nested():
            await service.apply_organisation_changes(
                session, organisation, {"parent_id": parent_id}, by=by
            )
    except AppError as exc:
        report.errors.append(RowError(row.number, f"organisation '{row.label}'", _reason(exc)))


async def _import_contacts(
    session: AsyncSession,
    organisation: Organisation,
    contacts: list[ContactPointCreate],
    by: Principal,
    is_sample: bool,
) -> bool:
    """Add the contact points not yet stored (matched on e-mail, else on name and title)."""
    if not contacts:
        return False
    stored = await repository.list_contact_points(session, organisation.id, include_archived=True)
    keys = {(c.email or "", c.name or "", c.title or "") for c in stored}
    emails = {c.email for c in stored if c.email}
    added = False
    for contact in contacts:
        key = (contact.email or "", contact.name or "", contact.title or "")
        if key in keys or (contact.email and contact.email in emails):
            continue
        await service.create_contact_point(
            session, organisation.id, contact, by=by, is_sample=is_sample
        )
        added = True
    return added


async def _protocol_row(session, row, refs, parents, by, is_sample) -> str:  # type: ignore[no-untyped-def]
    raw = dict(row.data)
    parties = []
    for index, party in enumerate(raw.pop("parties", None) or []):
        party = PartyImport.model_validate(party)
        org_id = await _resolve_ref(session, refs, party.organisation_ref)
        if org_id is None:
            raise ValueError(
                f"parties.{index}.organisation_ref: no organisation with ref "
                f"'{party.organisation_ref}'"
            )
        parties.append(
            PartyIn(
                organisation_id=org_id,
                role=party.role,
                responsibilities=party.responsibilities,
            ).model_dump()
        )
    data = ProtocolCreate.model_validate(raw | {"parties": parties})
    existing = None
    if data.ref:
        existing = await repository.find_protocol_by_ref(session, data.ref)
    if existing is None:
        existing = (
            await session.scalars(
                select(Protocol)
                .options(selectinload(Protocol.parties))
                .where(Protocol.country == data.country, Protocol.title == data.title)
            )
        ).first()
    if existing is None:
        await service.create_protocol(session, data, by=by, is_sample=is_sample)
        return "created"
    before = existing.version
    update = ProtocolUpdate.model_validate(data.model_dump(mode="json"))
    await service.apply_protocol_changes(session, existing, update, by=by)
    return "updated" if existing.version != before else "unchanged"


# --- exporting ----------------------------------------------------------------------------


async def load_everything(
    session: AsyncSession, *, with_contacts: bool
) -> tuple[list[Organisation], list[Protocol]]:
    stmt = (
        select(Organisation)
        .options(selectinload(Organisation.identifiers), selectinload(Organisation.terms))
        .order_by(Organisation.country, Organisation.name, Organisation.id)
    )
    if with_contacts:
        stmt = stmt.options(selectinload(Organisation.contact_points))
    organisations = list((await session.scalars(stmt)).all())
    protocols = list(
        (
            await session.scalars(
                select(Protocol).options(selectinload(Protocol.parties)).order_by(Protocol.title)
            )
        ).all()
    )
    return organisations, protocols


def _ref_of(organisation: Organisation) -> str:
    return organisation.ref or f"id-{organisation.id}"


def export_document(
    organisations: list[Organisation], protocols: list[Protocol], *, with_contacts: bool
) -> dict[str, Any]:
    """The same shape `integra registry import` reads, so an export can be imported elsewhere."""
    by_id = {o.id: o for o in organisations}
    orgs = []
    for organisation in organisations:
        read = service.organisation_read(organisation).model_dump(mode="json")
        row = {
            k: read[k]
            for k in OrganisationImport.model_fields
            if k in read and k not in ("contact_points", "parent_id")
        }
        row["ref"] = _ref_of(organisation)
        parent = by_id.get(organisation.parent_id) if organisation.parent_id else None
        row["parent_ref"] = _ref_of(parent) if parent else None
        if with_contacts:
            row["contact_points"] = [
                {
                    k: v
                    for k, v in service.contact_point_dict(c).items()
                    if k in ContactPointCreate.model_fields
                }
                for c in organisation.contact_points
            ]
            row["contact_points"] = json.loads(json.dumps(row["contact_points"], default=str))
        orgs.append(row)
    prots = []
    for protocol in protocols:
        row = {k: getattr(protocol, k) for k in ProtocolCreate.model_fields if k != "parties"}
        row["parties"] = [
            {
                "organisation_ref": _ref_of(by_id[p.organisation_id]),
                "role": p.role,
                "responsibilities": p.responsibilities,
            }
            for p in protocol.parties
            if p.organisation_id in by_id
        ]
        prots.append(json.loads(json.dumps(row, default=str)))
    return {"organisations": orgs, "protocols": prots}


def export_csv(document: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in document["organisations"]:
        flat: dict[str, Any] = {}
        for column in CSV_COLUMNS:
            if column.startswith("address_"):
                flat[column] = (row.get("address") or {}).get(column.removeprefix("address_"))
            elif column in LIST_COLUMNS:
                flat[column] = "; ".join(row.get(column) or [])
            elif column == "identifiers":
                flat[column] = "; ".join(f"{i['scheme']}:{i['value']}" for i in row[column])
            elif column == "local_names":
                flat[column] = "; ".join(f"{n['language']}:{n['name']}" for n in row[column])
            elif isinstance(row.get(column), bool):
                flat[column] = "true" if row[column] else "false"
            else:
                flat[column] = row.get(column)
        writer.writerow(flat)
    return out.getvalue()


def export_hsds(organisations: list[Organisation], *, with_contacts: bool) -> list[dict[str, Any]]:
    """Organisations shaped as Open Referral HSDS 3 `organization` objects.

    Fields HSDS has no place for travel in `x_integra`.
    """
    out = []
    for organisation in organisations:
        read = OrganisationRead.model_validate(service.organisation_read(organisation))
        record: dict[str, Any] = {
            "id": str(organisation.id),
            "name": organisation.name,
            "alternate_name": "; ".join(n["name"] for n in organisation.local_names) or None,
            "description": organisation.description,
            "website": organisation.website,
            "legal_status": organisation.legal_basis,
            "parent_organization_id": str(organisation.parent_id)
            if organisation.parent_id
            else None,
            "organization_identifiers": [
                {
                    "id": f"{organisation.id}-{i}",
                    "identifier_scheme": ident.scheme,
                    "identifier_type": ident.scheme,
                    "identifier": ident.value,
                }
                for i, ident in enumerate(organisation.identifiers)
            ],
            "locations": _hsds_locations(organisation),
            "x_integra": read.model_dump(
                mode="json",
                include={
                    "ref",
                    "kind",
                    "sector",
                    "level",
                    "country",
                    "region",
                    "areas",
                    "services",
                    "target_groups",
                    "languages",
                    "single_point_of_contact",
                    "status",
                    "last_verified_date",
                },
            ),
        }
        if with_contacts:
            record["contacts"] = [_hsds_contact(c) for c in organisation.contact_points]
        out.append(record)
    return out


def _hsds_locations(organisation: Organisation) -> list[dict[str, Any]]:
    if not (organisation.address_locality or organisation.address_street):
        return []
    return [
        {
            "id": f"{organisation.id}-location",
            "location_type": "physical",
            "addresses": [
                {
                    "id": f"{organisation.id}-address",
                    "address_type": "physical",
                    "address_1": organisation.address_street or "",
                    "city": organisation.address_locality or "",
                    "state_province": organisation.address_region or organisation.region or "",
                    "postal_code": organisation.address_postal_code or "",
                    "country": organisation.country,
                }
            ],
        }
    ]


def _hsds_contact(contact: ContactPoint) -> dict[str, Any]:
    return {
        "id": str(contact.id),
        "name": contact.name,
        "title": contact.title,
        "department": contact.department,
        "email": contact.email,
        "phones": [
            {
                "id": f"{contact.id}-{i}",
                "number": p["number"],
                "extension": p.get("extension"),
                "type": p.get("type"),
                "description": p.get("description"),
                "languages": [{"code": code} for code in contact.languages],
            }
            for i, p in enumerate(contact.phones)
        ],
    }


def audit_contact_export(
    session: AsyncSession, by: Principal, organisations: Iterable[Organisation]
) -> int:
    ids = [c.id for o in organisations for c in o.contact_points]
    audit.record_reads(session, by, "contact_point", ids)
    audit.record(
        session,
        by,
        action="export",
        entity_type="contact_point",
        entity_id=None,
        detail={"count": len(ids)},
    )
    return len(ids)
