"""Bulk import and export of the registry (CSV and JSON; the HSDS export is in hsds.py).

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
from functools import partial
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from node.core import audit
from node.core.auth import Principal
from node.core.schemas import Ref, given
from node.core.tabular import (
    ImportReport,
    ImportRun,
    Row,
    claim,
    decode,
    import_one,
    join,
    read_csv_rows,
    read_json_rows,
    safe_cell,
    split,
    unquote_cell,
)
from registry import repository, service
from registry.models import Organisation, Protocol
from registry.schemas import (
    ContactPointCreate,
    ContactPointUpdate,
    OrganisationCreate,
    ProtocolCreate,
    ProtocolUpdate,
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
class RegistryImportRun(ImportRun):
    """An import run that also keeps the refs it stored, to resolve parents and parties."""

    refs: dict[str, uuid.UUID] = field(default_factory=dict)
    file_refs: set[str] = field(default_factory=set)
    deferred_parents: list[tuple[Row, uuid.UUID, str]] = field(default_factory=list)


# --- reading files ------------------------------------------------------------------------


def read_rows(content: bytes, fmt: str) -> list[Row]:
    """Rows numbered as a person finds them: CSV by line (header is line 1), JSON by position."""
    text = decode(content)
    if fmt == "csv":
        return read_csv_rows(text, CSV_COLUMNS, _csv_record, kind="organisation")
    return read_json_rows(text, {"organisations": "organisation", "protocols": "protocol"})


def _pairs(value: str, keys: tuple[str, str]) -> list[dict[str, str]]:
    out = []
    for part in split(value):
        left, sep, right = part.partition(":")
        if not sep:
            raise ValueError(f"'{part}' should be written {keys[0]}:{keys[1]}")
        out.append({keys[0]: left.strip(), keys[1]: right.strip()})
    return out


def _csv_record(record: dict[str, str | None]) -> dict[str, Any]:
    values = {
        k: unquote_cell(v.strip())
        for k, v in record.items()
        if isinstance(k, str) and isinstance(v, str) and v.strip()
    }
    out: dict[str, Any] = {}
    try:
        for key, value in values.items():
            if key in LIST_COLUMNS:
                out[key] = split(value)
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


async def import_rows(
    session: AsyncSession,
    rows: list[Row],
    *,
    by: Principal,
    is_sample: bool = False,
    progress: Callable[[], None] = lambda: None,
) -> ImportReport:
    run = RegistryImportRun(by=by, is_sample=is_sample)
    run.file_refs = {
        str(r.data["ref"])
        for r in rows
        if r.kind == "organisation" and isinstance(r.data.get("ref"), str)
    }
    for row in (r for r in rows if r.kind == "organisation"):
        await import_one(session, run, row, _organisation_row)
        progress()
    for row, org_id, parent_ref in run.deferred_parents:
        await import_one(session, run, row, partial(_set_parent, org_id=org_id, ref=parent_ref))
    for row in (r for r in rows if r.kind == "protocol"):
        await import_one(session, run, row, _protocol_row)
        progress()
    return run.report


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


async def _organisation_row(session: AsyncSession, run: RegistryImportRun, row: Row) -> str:
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
        claim(run, row, "organisation", organisation.id)
        outcome = "created"
    else:
        claim(run, row, "organisation", existing.id)
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
    session: AsyncSession, run: RegistryImportRun, _row: Row, *, org_id: uuid.UUID, ref: str
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
    run: RegistryImportRun,
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


async def _protocol_row(session: AsyncSession, run: RegistryImportRun, row: Row) -> str:
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
        claim(run, row, "protocol", protocol.id)
        return "created"
    claim(run, row, "protocol", existing.id)
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
                flat[column] = join(row.get(column) or [])
            elif column == "identifiers":
                flat[column] = join(f"{i['scheme']}:{i['value']}" for i in row[column])
            elif column == "local_names":
                flat[column] = join(f"{n['language']}:{n['name']}" for n in row[column])
            elif isinstance(row.get(column), bool):
                flat[column] = "true" if row[column] else "false"
            else:
                flat[column] = row.get(column)
        writer.writerow({k: safe_cell(v) for k, v in flat.items()})
    return out.getvalue()


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
