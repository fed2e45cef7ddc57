"""Bulk import and export of practices (JSON and CSV); study-visit reports have their own
(`practices.study_visits.transfer`), on the organisation links read here.

As for the registry: each row is matched to what is stored (by `ref`, then by country and
title) and only real differences are written, so a re-run changes nothing; a bad row is
refused with its row number and reason while the good ones are stored. Organisations are
named by their registry `ref`, or by a free `name` for bodies outside the registry.

On a node that federates, a row that publishes (a new published record, or a published one
changed) needs the publisher's confirmation that the free text names no person the node cannot
know (`confirmed`), else it is refused; the report says which rows the personal-data gate holds
from the federation's feed, with the words it found.
"""

import csv
import io
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator
from sqlalchemy.ext.asyncio import AsyncSession

import registry
from node.core import audit, outbox
from node.core.auth import Principal
from node.core.db import utcnow
from node.core.schemas import Ref
from node.core.settings import Settings
from node.core.tabular import (
    ImportReport,
    ImportRun,
    Row,
    RowError,
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
from practices import repository, service
from practices.models import Practice
from practices.schemas import GateFinding, PracticeCreate, PracticeUpdate
from practices.tasks import PRACTICE_CHANGED
from practices.vocabulary import OrganisationRole, PracticeStatus

PRACTICE_LISTS = ("intervention_types", "process_focus", "settings", "target_groups", "ideologies")
PRACTICE_CSV = [
    "ref",
    "title",
    "kind",
    "original_title",
    "language",
    "summary",
    "description",
    "problem_addressed",
    "rationale",
    *PRACTICE_LISTS,
    "organisations",
    "country",
    "geographical_scope",
    "start_date",
    "end_date",
    "staffing",
    "intensity_duration",
    "resources_funding",
    "evaluation_type",
    "review_label",
    "sustainability",
    "transferability",
    "lessons_learned",
    "licence",
    "status",
    "withdrawn_reason",
]


class LinkImport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ref: Ref | None = None
    name: str | None = None
    role: OrganisationRole = OrganisationRole.responsible

    @model_validator(mode="after")
    def _one_of(self) -> "LinkImport":
        if (self.ref is None) == (self.name is None):
            raise ValueError("give either ref or name")
        return self


async def organisation_links(
    session: AsyncSession, raw: Any, field: str, *, with_role: bool = True
) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise ValueError(f"{field}: a list of {{ref or name, role}} is required")
    out = []
    for index, item in enumerate(raw):
        link = LinkImport.model_validate(item)
        entry: dict[str, Any] = {"name": link.name, "organisation_id": None}
        if link.ref:
            found = await registry.find_organisation_by_ref(session, link.ref)
            if found is None:
                raise ValueError(f"{field}.{index}.ref: no organisation with ref '{link.ref}'")
            entry = {"organisation_id": found.id, "name": None}
        if with_role:
            entry["role"] = link.role
        out.append(entry)
    return out


# --- publishing: the confirmation, and the holds said --------------------------------------

UNCONFIRMED = (
    "status published: this node federates, so publishing needs the publisher's confirmation "
    "that the free text names no person the node cannot know; read the texts, then import "
    "again with --confirm-no-person"
)


@dataclass
class PublishingRun(ImportRun):
    """An import that may publish: on a node that federates (`settings.country`), with or
    without the publisher's confirmation, and the records its rows published."""

    settings: Settings | None = None
    confirmed: bool = False
    published: list[tuple[Row, str, Any]] = field(default_factory=list)


def published_row(
    session: AsyncSession, run: PublishingRun, row: Row, record_type: str, record: Any
) -> None:
    """A row that publishes a record (new, or changed while published): refused without the
    confirmation on a node that federates; the publish audited with it."""
    if service.federates(run.settings) and not run.confirmed:
        raise ValueError(UNCONFIRMED)
    audit.record(
        session,
        run.by,
        action="publish",
        entity_type=record_type,
        entity_id=record.id,
        detail={"version": record.version, "import": True} | service.confirmation(run.confirmed),
    )
    run.published.append((row, record_type, record))


async def say_holds(session: AsyncSession, run: PublishingRun) -> None:
    """The rows whose record the personal-data gate holds from the federation's feed, with
    what it found: judged once every row is in, as the feed's job will judge them."""
    records = [(record_type, record) for _, record_type, record in run.published]
    verdicts = await service.gate_verdicts(session, run.settings, records)
    for (row, _, _), found in zip(run.published, verdicts, strict=True):
        if found:
            what = f"{row.kind} '{row.label}'"
            run.report.held.append(RowError(row.number, what, held_reason(found)))


def held_reason(found: list[GateFinding]) -> str:
    said = (f"{f.detector} in {f.field}: '{f.words}' ({f.reason or f.context})" for f in found)
    return "held from the federation's feed: " + "; ".join(said)


# --- practices ----------------------------------------------------------------------------


def read_practice_rows(content: bytes, fmt: str) -> list[Row]:
    text = decode(content)
    if fmt == "csv":
        return read_csv_rows(text, PRACTICE_CSV, _practice_csv_record, kind="practice")
    return read_json_rows(text, {"practices": "practice"})


def _practice_csv_record(record: dict[str, str | None]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in record.items():
        if not isinstance(key, str) or not isinstance(value, str) or not value.strip():
            continue
        value = unquote_cell(value.strip())
        if key in PRACTICE_LISTS:
            out[key] = split(value)
        elif key == "organisations":
            out[key] = [_csv_link(part) for part in split(value)]
        else:
            out[key] = value
    return out


def _csv_link(text: str) -> dict[str, str]:
    """`role:ref:<registry ref>` or `role:<free name>` (role optional, default responsible)."""
    role, sep, target = text.partition(":")
    if not sep or role.strip() not in {r.value for r in OrganisationRole}:
        role, target = "responsible", text
    target = target.strip()
    if target.startswith("ref:"):
        return {"ref": target.removeprefix("ref:").strip(), "role": role.strip()}
    return {"name": target, "role": role.strip()}


async def import_practices(
    session: AsyncSession,
    rows: list[Row],
    *,
    by: Principal,
    is_sample: bool = False,
    progress: Callable[[], None] = lambda: None,
    settings: Settings | None = None,
    confirmed: bool = False,
) -> ImportReport:
    """`settings`: the node's, whose country makes publishing need `confirmed` (the
    publisher's confirmation) and the gate's verdict said in the report's `held`."""
    run = PublishingRun(by=by, is_sample=is_sample, settings=settings, confirmed=confirmed)
    for row in rows:
        await import_one(session, run, row, _practice_row)
        progress()
    await say_holds(session, run)
    return run.report


async def _practice_row(session: AsyncSession, run: PublishingRun, row: Row) -> str:
    practice, outcome = await _store_practice(session, run, row)
    if practice.status == PracticeStatus.published and outcome != "unchanged":
        published_row(session, run, row, "practice", practice)
    return outcome


async def _store_practice(
    session: AsyncSession, run: PublishingRun, row: Row
) -> tuple[Practice, str]:
    raw = dict(row.data)
    status = PracticeStatus(raw.pop("status", "draft"))
    reason = raw.pop("withdrawn_reason", None)
    if "organisations" in raw:
        raw["organisations"] = await organisation_links(
            session, raw["organisations"], "organisations"
        )
    existing = await _match_practice(session, raw)
    if "evaluation_type" in raw:  # a CSV names the type only: the outcomes stored stay
        outcomes = existing.outcomes if existing is not None else []
        raw["evaluation"] = {"type": raw.pop("evaluation_type"), "outcomes": outcomes}
    data = PracticeCreate.model_validate(raw)
    if existing is None:
        practice = await service.create_practice(session, data, by=run.by, is_sample=run.is_sample)
        claim(run, row, "practice", practice.id)
        await _set_status(session, practice, status, reason)
        return practice, "created"
    claim(run, row, "practice", existing.id)
    before = existing.version
    update = PracticeUpdate.model_validate(data.model_dump(mode="json", exclude_unset=True))
    await service.apply_practice_changes(session, existing, update, by=run.by)
    if "status" in row.data:
        await _set_status(session, existing, status, reason)
    return existing, "updated" if existing.version != before else "unchanged"


async def _match_practice(session: AsyncSession, raw: dict[str, Any]) -> Practice | None:
    ref, title, country = raw.get("ref"), raw.get("title"), raw.get("country")
    found = await repository.find_practice_by_ref(session, ref) if isinstance(ref, str) else None
    if found is None and isinstance(title, str):
        found = await repository.find_practice_by_title(
            session, country if isinstance(country, str) else None, title.strip()
        )
    return found


async def _set_status(
    session: AsyncSession, practice: Practice, status: PracticeStatus, reason: str | None
) -> None:
    """The operator's file states where each record stands in the workflow."""
    if practice.status == status and practice.withdrawn_reason == reason:
        return
    if status is PracticeStatus.withdrawn and not reason:
        raise ValueError("withdrawn_reason: a withdrawn practice needs the reason")
    practice.status = status
    practice.withdrawn_reason = reason if status is PracticeStatus.withdrawn else None
    if status is PracticeStatus.published and practice.published_at is None:
        practice.published_at = utcnow()
    practice.updated_at = utcnow()
    await session.flush()
    outbox.enqueue(session, PRACTICE_CHANGED, practice.id)


async def export_practices(session: AsyncSession) -> list[dict[str, Any]]:
    practices = (await session.scalars(repository.practice_query().order_by(Practice.title))).all()
    refs = await registry.organisation_refs(session)
    out = []
    for read in await service.practice_reads(session, practices):
        row = read.model_dump(
            mode="json",
            exclude={
                *("id", "is_sample", "version", "created_at", "updated_at", "published_at"),
                "held",  # the gate's state on this node, not part of the record
            },
        )
        row["organisations"] = [
            {"ref": refs.get(uuid.UUID(o["organisation_id"]))} | {"role": o["role"]}
            if o["organisation_id"] and refs.get(uuid.UUID(o["organisation_id"]))
            else {"name": o["display_name"], "role": o["role"]}
            for o in row["organisations"]
        ]
        out.append(row)
    return out


def practices_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=PRACTICE_CSV, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        flat: dict[str, Any] = {}
        for column in PRACTICE_CSV:
            if column in PRACTICE_LISTS:
                flat[column] = join(row[column])
            elif column == "organisations":
                flat[column] = join(
                    f"{o['role']}:ref:{o['ref']}" if o.get("ref") else f"{o['role']}:{o['name']}"
                    for o in row["organisations"]
                )
            elif column == "evaluation_type":
                flat[column] = row["evaluation"]["type"]
            else:
                flat[column] = row.get(column)
        writer.writerow({k: safe_cell(v) for k, v in flat.items()})
    return out.getvalue()
