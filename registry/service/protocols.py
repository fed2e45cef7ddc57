"""Cooperation protocols: who may record one, and the parties and dates it must hold."""

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from node.core import audit
from node.core.auth import Principal
from node.core.db import sync_collection, utcnow
from node.core.errors import Conflict, Forbidden, InvalidInput, NotFound, check_version
from node.core.schemas import given
from node.core.text import fold
from registry import repository
from registry.models import Protocol, ProtocolParty
from registry.schemas import PartyIn, PartyRead, ProtocolCreate, ProtocolRead, ProtocolUpdate


async def get_protocol(session: AsyncSession, protocol_id: uuid.UUID) -> Protocol:
    protocol = await repository.get_protocol(session, protocol_id)
    if protocol is None:
        raise NotFound(f"No protocol with id {protocol_id}.")
    return protocol


async def protocol_reads(
    session: AsyncSession, protocols: Sequence[Protocol]
) -> list[ProtocolRead]:
    names = await repository.organisation_names(
        session, {p.organisation_id for pr in protocols for p in pr.parties}
    )
    out = []
    for protocol in protocols:
        values = {
            name: getattr(protocol, name) for name in ProtocolRead.model_fields if name != "parties"
        }
        values["parties"] = [
            PartyRead(
                organisation_id=p.organisation_id,
                organisation_name=names.get(p.organisation_id, ""),
                role=p.role,
                responsibilities=p.responsibilities,
            )
            for p in protocol.parties
        ]
        out.append(ProtocolRead.model_validate(values))
    return out


def _may_edit_protocol(by: Principal, party_ids: list[uuid.UUID]) -> bool:
    return by.is_admin or any(by.may_edit(org_id) for org_id in party_ids)


async def _check_parties(session: AsyncSession, parties: list[PartyIn]) -> None:
    seen: set[uuid.UUID] = set()
    for index, party in enumerate(parties):
        if party.organisation_id in seen:
            raise InvalidInput(f"parties.{index}.organisation_id", "this party is listed twice")
        seen.add(party.organisation_id)
        if not await repository.organisation_exists(session, party.organisation_id):
            raise InvalidInput(
                f"parties.{index}.organisation_id",
                f"no organisation with id {party.organisation_id}",
            )


def _protocol_search_text(protocol: Protocol) -> str:
    parts = [protocol.title, protocol.ref or "", protocol.purpose or "", protocol.principles or ""]
    return fold(" \n".join(parts))


def _set_parties(protocol: Protocol, parties: list[PartyIn]) -> None:
    wanted = {p.organisation_id: (index, p) for index, p in enumerate(parties)}
    sync_collection(
        protocol.parties,
        list(wanted),
        key=lambda p: p.organisation_id,
        make=lambda org_id: ProtocolParty(organisation_id=org_id, role="party"),
    )
    for party in protocol.parties:
        index, given = wanted[party.organisation_id]
        party.role = str(given.role)
        party.responsibilities = given.responsibilities
        party.position = index


async def create_protocol(
    session: AsyncSession, data: ProtocolCreate, *, by: Principal, is_sample: bool = False
) -> Protocol:
    if not _may_edit_protocol(by, [p.organisation_id for p in data.parties]):
        raise Forbidden("You may record protocols only where an organisation of yours is a party.")
    if data.ref is not None and await repository.ref_taken(session, Protocol, data.ref):
        raise Conflict(f"The ref '{data.ref}' is already used by another protocol.")
    await _check_parties(session, data.parties)
    _check_merged_dates(None, {"signed_date": data.signed_date, "review_date": data.review_date})
    values = data.model_dump(mode="python", exclude={"parties"})
    values["document_url"] = str(data.document_url) if data.document_url else None
    protocol = Protocol(is_sample=is_sample, **values)
    _set_parties(protocol, data.parties)
    protocol.search_text = _protocol_search_text(protocol)
    session.add(protocol)
    await session.flush()
    audit.record(session, by, action="create", entity_type="protocol", entity_id=protocol.id)
    return protocol


async def update_protocol(
    session: AsyncSession,
    protocol_id: uuid.UUID,
    data: ProtocolUpdate,
    *,
    expected_version: int,
    by: Principal,
) -> Protocol:
    protocol = await get_protocol(session, protocol_id)
    current = [p.organisation_id for p in protocol.parties]
    if not _may_edit_protocol(by, current):
        raise Forbidden("You may edit protocols only where an organisation of yours is a party.")
    check_version(expected_version, protocol.version, "protocol")
    new_parties = [p.organisation_id for p in data.parties or []]
    if new_parties and not _may_edit_protocol(by, new_parties):
        raise Forbidden("The parties must still include an organisation you are assigned to.")
    return await apply_protocol_changes(session, protocol, data, by=by)


async def apply_protocol_changes(
    session: AsyncSession, protocol: Protocol, data: ProtocolUpdate, *, by: Principal
) -> Protocol:
    values = given(data, exclude={"parties"})
    if "document_url" in values:
        values["document_url"] = str(data.document_url) if data.document_url else None
    if data.ref is not None:
        holder = await repository.ref_taken(session, Protocol, data.ref)
        if holder is not None and holder != protocol.id:
            raise Conflict(f"The ref '{data.ref}' is already used by another protocol.")
    _check_merged_dates(protocol, values)
    changed = [k for k, v in values.items() if getattr(protocol, k) != v]
    for name in changed:
        setattr(protocol, name, values[name])
    if data.parties is not None and _parties_differ(protocol, data.parties):
        await _check_parties(session, data.parties)
        _set_parties(protocol, data.parties)
        changed.append("parties")
    if changed:
        protocol.search_text = _protocol_search_text(protocol)
        protocol.updated_at = utcnow()
        await session.flush()
        audit.record(
            session,
            by,
            action="update",
            entity_type="protocol",
            entity_id=protocol.id,
            detail={"fields": changed, "version": protocol.version},
        )
    return protocol


def _check_merged_dates(protocol: Protocol | None, values: dict[str, Any]) -> None:
    signed = values.get("signed_date", protocol.signed_date if protocol else None)
    review = values.get("review_date", protocol.review_date if protocol else None)
    if signed is not None and review is not None and review < signed:
        raise InvalidInput("review_date", "review_date cannot be before signed_date")


def _parties_differ(protocol: Protocol, parties: list[PartyIn]) -> bool:
    old = [(p.organisation_id, p.role, p.responsibilities) for p in protocol.parties]
    new = [(p.organisation_id, str(p.role), p.responsibilities) for p in parties]
    return old != new


async def archive_protocol(
    session: AsyncSession, protocol_id: uuid.UUID, *, expected_version: int, by: Principal
) -> Protocol:
    return await update_protocol(
        session,
        protocol_id,
        ProtocolUpdate(status="archived"),
        expected_version=expected_version,
        by=by,
    )
