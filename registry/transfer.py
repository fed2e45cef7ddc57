"""Bulk import and export of the registry (CSV, JSON, HSDS-shaped JSON).

An import is idempotent: each row is matched to what is stored (by `ref`, then by identifier,
then by country and name) and only real differences are written, so running the same file
twice changes nothing. Each row is stored or refused on its own.
"""

import csv
import io
import json
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from node.core import audit
from node.core.auth import Principal
from node.core.errors import AppError
from registry import repository, service
from registry.models import ContactPoint, Organisation, Protocol
from registry.schemas import (
    ContactPointCreate,
    ContactPointUpdate,
    OrganisationCreate,
    OrganisationRead,
    ProtocolCreate,
    ProtocolUpdate,
    Ref,
    given,
)

LIST_COLUMNS = ("areas", "services", "target_groups", "languages")
FORMULA_STARTS = ("=", "+", "-", "@")
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


def decode(content: bytes) -> str:
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileError(f"the file is not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def read_rows(content: bytes, fmt: str) -> list[Row]:
    """Rows numbered as a person finds them: CSV by line (header is line 1), JSON by position."""
    text = decode(content)
    if fmt == "csv":
        return read_csv_rows(text, CSV_COLUMNS, _csv_record)
    return read_json_rows(text, {"organisations": "organisation", "protocols": "protocol"})


def read_json_rows(text: str, sections: dict[str, str]) -> list[Row]:
    """Rows of a JSON file ``{"<section>": [objects], ...}``; a bare list is the first section."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FileError(f"not valid JSON: {exc.msg} at line {exc.lineno}") from None
    except (ValueError, RecursionError) as exc:  # e.g. a 5,000-digit number, deep nesting
        raise FileError(f"not usable JSON: {type(exc).__name__}") from None
    first = next(iter(sections))
    if isinstance(doc, list):
        doc = {first: doc}
    shape = f"expected a list of {first} or " + ", ".join(f'"{k}": [...]' for k in sections)
    if not isinstance(doc, dict) or not set(doc) <= set(sections):
        raise FileError(shape)
    if not all(isinstance(doc.get(k, []), list) for k in sections):
        raise FileError(shape)
    rows = [
        Row(i + 1, r, kind)
        for section, kind in sections.items()
        for i, r in enumerate(doc.get(section, []))
    ]
    for row in rows:
        if not isinstance(row.data, dict):
            raise FileError(f"{row.kind} {row.number} is not an object")
    return rows


def _split(value: str) -> list[str]:
    """Items separated by ';'; a literal semicolon inside an item is written '\\;'."""
    parts = re.split(r"(?<!\\);", value)
    return [p.replace("\\;", ";").strip() for p in parts if p.strip()]


def _join(items: Iterable[str]) -> str:
    return "; ".join(item.replace(";", "\\;") for item in items)


def _pairs(value: str, keys: tuple[str, str]) -> list[dict[str, str]]:
    out = []
    for part in _split(value):
        left, sep, right = part.partition(":")
        if not sep:
            raise ValueError(f"'{part}' should be written {keys[0]}:{keys[1]}")
        out.append({keys[0]: left.strip(), keys[1]: right.strip()})
    return out


def _safe_cell(value: Any) -> Any:
    """Spreadsheets run cells that start with = + - @ as formulas; quote them with an
    apostrophe (and a leading apostrophe itself), which the import takes off again."""
    if isinstance(value, str) and value[:1] in (*FORMULA_STARTS, "'"):
        return "'" + value
    return value


def _unquote_cell(value: str) -> str:
    return value[1:] if value[:1] == "'" and value[1:2] in (*FORMULA_STARTS, "'") else value


def read_csv_rows(
    text: str,
    columns: list[str],
    convert: Callable[[dict[str, str | None]], dict[str, Any]],
    *,
    kind: str = "organisation",
) -> list[Row]:
    first_line = text.split("\n", 1)[0]
    # Spreadsheets in FR, PT, BG and GR locales save CSV with ';' between columns.
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        fieldnames = reader.fieldnames
        required = columns[1]  # the name or title column
        if not fieldnames or required not in fieldnames:
            raise FileError(
                f"the first line must name the columns, including '{required}' "
                f"(columns are separated by '{delimiter}')"
            )
        unknown = set(fieldnames) - set(columns)
        if unknown:
            raise FileError(f"unknown columns: {', '.join(sorted(unknown))}")
        rows = []
        start = reader.line_num + 1
        for record in reader:
            rows.append(Row(start, convert(record), kind))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise FileError(f"line {reader.line_num}: {exc}") from None
    return rows


def _csv_record(record: dict[str, str | None]) -> dict[str, Any]:
    values = {
        k: _unquote_cell(v.strip())
        for k, v in record.items()
        if isinstance(k, str) and isinstance(v, str) and v.strip()
    }
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


@dataclass
class ImportRun:
    """What one import has seen so far: the refs it stored, and each record's first row."""

    by: Principal
    is_sample: bool
    report: ImportReport = field(default_factory=ImportReport)
    refs: dict[str, uuid.UUID] = field(default_factory=dict)
    file_refs: set[str] = field(default_factory=set)
    first_row: dict[tuple[str, uuid.UUID], int] = field(default_factory=dict)
    deferred_parents: list[tuple[Row, uuid.UUID, str]] = field(default_factory=list)


async def import_rows(
    session: AsyncSession,
    rows: list[Row],
    *,
    by: Principal,
    is_sample: bool = False,
    progress: Callable[[], None] = lambda: None,
) -> ImportReport:
    run = ImportRun(by=by, is_sample=is_sample)
    run.file_refs = {
        str(r.data["ref"])
        for r in rows
        if r.kind == "organisation" and isinstance(r.data.get("ref"), str)
    }
    for row in (r for r in rows if r.kind == "organisation"):
        await _import_one(session, run, row, _organisation_row)
        progress()
    for row, org_id, parent_ref in run.deferred_parents:
        await _import_one(session, run, row, partial(_set_parent, org_id=org_id, ref=parent_ref))
    for row in (r for r in rows if r.kind == "protocol"):
        await _import_one(session, run, row, _protocol_row)
        progress()
    return run.report


RowHandler = Callable[[AsyncSession, ImportRun, Row], Awaitable[str | None]]


async def _import_one(session: AsyncSession, run: ImportRun, row: Row, handler: RowHandler) -> None:
    """One row in its own savepoint: refused whole, or stored whole."""
    try:
        async with session.begin_nested():
            outcome = await handler(session, run, row)
    except Exception as exc:
        run.report.errors.append(RowError(row.number, f"{row.kind} '{row.label}'", _reason(exc)))
        return
    if outcome is not None:
        setattr(run.report, outcome, getattr(run.report, outcome) + 1)


def _claim(run: ImportRun, row: Row, kind: str, record_id: uuid.UUID) -> None:
    """A file that names the same record twice would flip it on every run: refuse the repeat."""
    first = run.first_row.setdefault((kind, record_id), row.number)
    if first != row.number:
        raise ValueError(f"the same {kind} as {kind} {first} of this file")


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


async def _organisation_row(session: AsyncSession, run: ImportRun, row: Row) -> str:
    if "__error__" in row.data:
        raise ValueError(row.data["__error__"])
    data = OrganisationImport.model_validate(row.data)
    parent_id = await _resolve_ref(session, run.refs, data.parent_ref)
    if data.parent_ref and parent_id is None and data.parent_ref not in run.file_refs:
        raise ValueError(f"parent_ref: no organisation with ref '{data.parent_ref}'")
    exclude = {"parent_ref", "contact_points", "parent_id"}
    existing = await _match_organisation(session, data)
    if existing is None:
        values = data.model_dump(mode="python", exclude=exclude)
        create = OrganisationCreate.model_validate(values | {"parent_id": parent_id})
        organisation = await service.create_organisation(
            session, create, by=run.by, is_sample=run.is_sample
        )
        _claim(run, row, "organisation", organisation.id)
        outcome = "created"
    else:
        _claim(run, row, "organisation", existing.id)
        organisation = existing
        before = organisation.version
        values = _present_values(data, existing, exclude)
        if "parent_ref" in data.model_fields_set and (data.parent_ref is None or parent_id):
            values["parent_id"] = parent_id
        await service.apply_organisation_changes(session, organisation, values, by=run.by)
        outcome = "updated" if organisation.version != before else "unchanged"
    if await _import_contacts(session, organisation, data.contact_points, run):
        outcome = "updated" if outcome == "unchanged" else outcome
    if data.ref:
        run.refs[data.ref] = organisation.id
    if data.parent_ref is not None and parent_id is None:
        run.deferred_parents.append((row, organisation.id, data.parent_ref))
    return outcome


def _present_values(
    data: OrganisationImport, existing: Organisation, exclude: set[str]
) -> dict[str, Any]:
    """Only the columns the file gives are compared: a missing column changes nothing."""
    values = given(data, exclude=exclude)
    if values.get("website"):
        values["website"] = str(values["website"])
    if data.address is not None:
        sent = data.address.model_fields_set
        values["address"] = {
            key: getattr(data.address, key) if key in sent else getattr(existing, f"address_{key}")
            for key in ADDRESS_KEYS
        }
    return values


async def _resolve_ref(
    session: AsyncSession, refs: dict[str, uuid.UUID], ref: str | None
) -> uuid.UUID | None:
    if ref is None:
        return None
    if ref in refs:
        return refs[ref]
    found = await repository.find_organisation_by_ref(session, ref)
    return found.id if found else None


async def _set_parent(
    session: AsyncSession, run: ImportRun, _row: Row, *, org_id: uuid.UUID, ref: str
) -> None:
    parent_id = await _resolve_ref(session, run.refs, ref)
    if parent_id is None:
        raise ValueError(f"parent_ref: no organisation with ref '{ref}' was stored")
    organisation = await service.get_organisation(session, org_id)
    await service.apply_organisation_changes(
        session, organisation, {"parent_id": parent_id}, by=run.by
    )


async def _import_contacts(
    session: AsyncSession,
    organisation: Organisation,
    contacts: list[ContactPointCreate],
    run: ImportRun,
) -> bool:
    """Add contact points not yet stored, update those matched (by e-mail, else name and title)."""
    if not contacts:
        return False
    stored = list(
        await repository.list_contact_points(session, organisation.id, include_archived=True)
    )
    changed = False
    for contact in contacts:
        match = next(
            (c for c in stored if contact.email and c.email == contact.email), None
        ) or next(
            (
                c
                for c in stored
                if (c.name, c.title) == (contact.name, contact.title) and not contact.email
            ),
            None,
        )
        if match is None:
            await service.create_contact_point(
                session, organisation.id, contact, by=run.by, is_sample=run.is_sample
            )
            changed = True
            continue
        values = given(contact)
        if "phones" in values:
            values["phones"] = service.normalise_phones(
                values["phones"], organisation.country, "phones"
            )
        differs = {name: value for name, value in values.items() if getattr(match, name) != value}
        if differs:
            update = ContactPointUpdate.model_validate(differs)
            await service.update_contact_point(
                session, match.id, update, expected_version=match.version, by=run.by
            )
            changed = True
    return changed


async def _protocol_row(session: AsyncSession, run: ImportRun, row: Row) -> str:
    raw = dict(row.data)
    given_parties = raw.pop("parties", None)
    if not isinstance(given_parties, list):
        raise ValueError("parties: a list of {organisation_ref, role} is required")
    parties = []
    for index, party in enumerate(given_parties):
        party = PartyImport.model_validate(party)
        org_id = await _resolve_ref(session, run.refs, party.organisation_ref)
        if org_id is None:
            raise ValueError(
                f"parties.{index}.organisation_ref: no organisation with ref "
                f"'{party.organisation_ref}'"
            )
        parties.append(
            {
                "organisation_id": org_id,
                "role": party.role,
                "responsibilities": party.responsibilities,
            }
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
        protocol = await service.create_protocol(session, data, by=run.by, is_sample=run.is_sample)
        _claim(run, row, "protocol", protocol.id)
        return "created"
    _claim(run, row, "protocol", existing.id)
    before = existing.version
    # Only what the file gives: a field the file leaves out keeps its stored value.
    update = ProtocolUpdate.model_validate(data.model_dump(mode="json", exclude_unset=True))
    await service.apply_protocol_changes(session, existing, update, by=run.by)
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
                flat[column] = _join(row.get(column) or [])
            elif column == "identifiers":
                flat[column] = _join(f"{i['scheme']}:{i['value']}" for i in row[column])
            elif column == "local_names":
                flat[column] = _join(f"{n['language']}:{n['name']}" for n in row[column])
            elif isinstance(row.get(column), bool):
                flat[column] = "true" if row[column] else "false"
            else:
                flat[column] = row.get(column)
        writer.writerow({k: _safe_cell(v) for k, v in flat.items()})
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
