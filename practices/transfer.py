"""Bulk import and export of practices and study-visit reports (JSON and CSV).

As for the registry: each row is matched to what is stored (by `ref`, then by country and
title) and only real differences are written, so a re-run changes nothing; a bad row is
refused with its row number and reason while the good ones are stored. Organisations are
named by their registry `ref`, or by a free `name` for bodies outside the registry.
"""

import csv
import io
import uuid
from collections.abc import Callable
from functools import partial
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from node.core import outbox
from node.core.auth import Principal
from node.core.db import utcnow
from practices import repository, service
from practices.models import Practice, StudyVisit
from practices.schemas import PracticeCreate, PracticeUpdate, StudyVisitCreate, StudyVisitUpdate
from practices.tasks import PRACTICE_CHANGED, STUDY_VISIT_CHANGED
from practices.vocabulary import OrganisationRole, PracticeStatus, ReportStatus
from registry import repository as registry
from registry.models import Organisation
from registry.schemas import Ref
from registry.transfer import (
    ImportReport,
    ImportRun,
    Row,
    _claim,
    _import_one,
    _join,
    _safe_cell,
    _split,
    _unquote_cell,
    decode,
    read_csv_rows,
    read_json_rows,
)

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


async def _links(
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
        value = _unquote_cell(value.strip())
        if key in PRACTICE_LISTS:
            out[key] = _split(value)
        elif key == "organisations":
            out[key] = [_csv_link(part) for part in _split(value)]
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
) -> ImportReport:
    run = ImportRun(by=by, is_sample=is_sample)
    for row in rows:
        await _import_one(session, run, row, _practice_row)
        progress()
    return run.report


async def _practice_row(session: AsyncSession, run: ImportRun, row: Row) -> str:
    raw = dict(row.data)
    status = PracticeStatus(raw.pop("status", "draft"))
    reason = raw.pop("withdrawn_reason", None)
    if "organisations" in raw:
        raw["organisations"] = await _links(session, raw["organisations"], "organisations")
    existing = await _match_practice(session, raw)
    if "evaluation_type" in raw:  # a CSV names the type only: the outcomes stored stay
        outcomes = existing.outcomes if existing is not None else []
        raw["evaluation"] = {"type": raw.pop("evaluation_type"), "outcomes": outcomes}
    data = PracticeCreate.model_validate(raw)
    if existing is None:
        practice = await service.create_practice(session, data, by=run.by, is_sample=run.is_sample)
        _claim(run, row, "practice", practice.id)
        await _set_status(session, practice, status, reason)
        return "created"
    _claim(run, row, "practice", existing.id)
    before = existing.version
    update = PracticeUpdate.model_validate(data.model_dump(mode="json", exclude_unset=True))
    await service.apply_practice_changes(session, existing, update, by=run.by)
    if "status" in row.data:
        await _set_status(session, existing, status, reason)
    return "updated" if existing.version != before else "unchanged"


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
    refs = await _organisation_refs(session)
    out = []
    for read in await service.practice_reads(session, practices):
        row = read.model_dump(
            mode="json",
            exclude={"id", "is_sample", "version", "created_at", "updated_at", "published_at"},
        )
        row["organisations"] = [
            {"ref": refs.get(uuid.UUID(o["organisation_id"]))} | {"role": o["role"]}
            if o["organisation_id"] and refs.get(uuid.UUID(o["organisation_id"]))
            else {"name": o["display_name"], "role": o["role"]}
            for o in row["organisations"]
        ]
        out.append(row)
    return out


async def _organisation_refs(session: AsyncSession) -> dict[uuid.UUID, str]:
    rows = await session.execute(select(Organisation.id, Organisation.ref))
    return {org_id: ref for org_id, ref in rows if ref}


def practices_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=PRACTICE_CSV, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        flat: dict[str, Any] = {}
        for column in PRACTICE_CSV:
            if column in PRACTICE_LISTS:
                flat[column] = _join(row[column])
            elif column == "organisations":
                flat[column] = _join(
                    f"{o['role']}:ref:{o['ref']}" if o.get("ref") else f"{o['role']}:{o['name']}"
                    for o in row["organisations"]
                )
            elif column == "evaluation_type":
                flat[column] = row["evaluation"]["type"]
            else:
                flat[column] = row.get(column)
        writer.writerow({k: _safe_cell(v) for k, v in flat.items()})
    return out.getvalue()


# --- study-visit reports ------------------------------------------------------------------


def read_study_visit_rows(content: bytes) -> list[Row]:
    return read_json_rows(decode(content), {"study_visits": "study_visit"})


async def import_study_visits(
    session: AsyncSession,
    rows: list[Row],
    *,
    by: Principal,
    author_id: uuid.UUID | None = None,
    is_sample: bool = False,
    progress: Callable[[], None] = lambda: None,
) -> ImportReport:
    run = ImportRun(by=by, is_sample=is_sample)
    for row in rows:
        await _import_one(session, run, row, partial(_study_visit_row, author_id=author_id))
        progress()
    return run.report


async def _study_visit_row(
    session: AsyncSession, run: ImportRun, row: Row, *, author_id: uuid.UUID | None
) -> str:
    raw = dict(row.data)
    status = ReportStatus(raw.pop("status", "draft"))
    for field in ("organising_authority",):
        if field in raw:
            raw[field] = (await _links(session, [raw[field]], field, with_role=False))[0]
    if "host_organisations" in raw:
        raw["host_organisations"] = await _links(
            session, raw["host_organisations"], "host_organisations", with_role=False
        )
    for index, member in enumerate(raw.get("delegation") or []):
        if isinstance(member, dict) and member.get("home_organisation"):
            member["home_organisation"] = (
                await _links(
                    session,
                    [member["home_organisation"]],
                    f"delegation.{index}.home_organisation",
                    with_role=False,
                )
            )[0]
    if "observed_practice_refs" in raw:
        raw["observed_practice_ids"] = await _practice_ids(
            session, raw.pop("observed_practice_refs")
        )
    data = StudyVisitCreate.model_validate(raw)
    existing = await repository.find_study_visit_by_ref(session, data.ref) if data.ref else None
    if existing is None:  # without a ref: the same visit is the same title, host and dates
        existing = await session.scalar(
            select(StudyVisit).where(
                StudyVisit.title == data.title,
                StudyVisit.host_country == data.host_country,
                StudyVisit.start_date == data.start_date,
            )
        )
    if existing is None:
        visit = await service.create_study_visit(
            session, data, by=run.by, is_sample=run.is_sample, status=status, author_id=author_id
        )
        if status is ReportStatus.published:
            outbox.enqueue(session, STUDY_VISIT_CHANGED, visit.id)
        _claim(run, row, "study_visit", visit.id)
        return "created"
    _claim(run, row, "study_visit", existing.id)
    before = existing.version
    update = StudyVisitUpdate.model_validate(data.model_dump(mode="json", exclude_unset=True))
    await service.update_study_visit(
        session, existing.id, update, expected_version=existing.version, by=run.by
    )
    return "updated" if existing.version != before else "unchanged"


async def _practice_ids(session: AsyncSession, refs: Any) -> list[str]:
    if not isinstance(refs, list):
        raise ValueError("observed_practice_refs: a list of practice refs is required")
    ids = []
    for index, ref in enumerate(refs):
        found = await repository.find_practice_by_ref(session, str(ref))
        if found is None:
            raise ValueError(f"observed_practice_refs.{index}: no practice with ref '{ref}'")
        ids.append(str(found.id))
    return ids


async def export_study_visits(
    session: AsyncSession, *, with_participants: bool
) -> list[dict[str, Any]]:
    """Reports in the shape `study-visits import` reads (organisations and observed practices
    by ref); review comments never, participant names only when asked for."""
    visits = (await session.scalars(select(StudyVisit).order_by(StudyVisit.title))).all()
    org_refs = await _organisation_refs(session)
    practice_refs = {
        str(i): ref for i, ref in await session.execute(select(Practice.id, Practice.ref)) if ref
    }
    out = []
    for visit in visits:
        read = await service.study_visit_read(session, visit, by=None)
        row = read.model_dump(
            mode="json",
            exclude={
                "id",
                "is_sample",
                "version",
                "created_at",
                "updated_at",
                "author_id",
                "comments",
                "submitted_at",
                "published_at",
                "observed_practice_ids",
            }
            | (set() if with_participants else {"participant_names"}),
        )
        row["organising_authority"] = _link_ref(row["organising_authority"], org_refs)
        row["host_organisations"] = [_link_ref(o, org_refs) for o in row["host_organisations"]]
        for member in row["delegation"]:
            if member.get("home_organisation"):
                member["home_organisation"] = _link_ref(member["home_organisation"], org_refs)
        row["observed_practice_refs"] = [
            practice_refs[i] for i in map(str, visit.observed_practice_ids) if i in practice_refs
        ]
        out.append(row)
    return out


def _link_ref(link: dict[str, Any], refs: dict[uuid.UUID, str]) -> dict[str, Any]:
    org_id = link.get("organisation_id")
    ref = refs.get(uuid.UUID(org_id)) if org_id else None
    return {"ref": ref} if ref else {"name": link.get("name")}


VISIT_CSV = [
    "ref",
    "title",
    "language",
    "host_country",
    "start_date",
    "end_date",
    "status",
    "purpose",
    "delegation",
    "findings",
    "recommendations",
    "addressed_to",
]


def study_visits_csv(rows: list[dict[str, Any]]) -> str:
    """One line a report, for a spreadsheet overview (participants are never in it)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=VISIT_CSV, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        flat = dict(row)
        flat["delegation"] = _join(f"{m['count']} {m['profession']}" for m in row["delegation"])
        flat["addressed_to"] = _join(row["addressed_to"])
        writer.writerow({k: _safe_cell(flat.get(k)) for k in VISIT_CSV})
    return out.getvalue()
