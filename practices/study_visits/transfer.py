"""Bulk import and export of study-visit reports (JSON; a CSV overview for spreadsheets).

As for practices: a row is matched to the stored report (by `ref`, else by title, host country
and first day) and only real differences are written, so a re-run changes nothing.
Organisations and observed practices are named by their `ref`. Participant names are personal
data: exported only when asked for, never in the CSV. Publishing on a node that federates needs
the publisher's confirmation, and held rows are said, as for practices.
"""

import csv
import io
import uuid
from collections.abc import Callable
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

import registry
from node.core import outbox
from node.core.auth import Principal
from node.core.settings import Settings
from node.core.tabular import (
    ImportReport,
    Row,
    claim,
    decode,
    import_one,
    join,
    read_json_rows,
    safe_cell,
)
from practices import repository as practices
from practices.study_visits import repository, service
from practices.study_visits.models import StudyVisit
from practices.study_visits.schemas import StudyVisitCreate, StudyVisitUpdate
from practices.tasks import STUDY_VISIT_CHANGED
from practices.transfer import PublishingRun, organisation_links, published_row, say_holds
from practices.vocabulary import ReportStatus

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
NOT_EXPORTED = {
    "id",
    "is_sample",
    "version",
    "created_at",
    "updated_at",
    "author_id",
    "comments",
    "submitted_at",
    "withdrawn_reason",
    "published_at",
    "observed_practice_ids",
}


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
    settings: Settings | None = None,
    confirmed: bool = False,
) -> ImportReport:
    """`settings`: the node's, whose country makes publishing need `confirmed` (the
    publisher's confirmation) and the gate's verdict said in the report's `held`."""
    run = PublishingRun(by=by, is_sample=is_sample, settings=settings, confirmed=confirmed)
    for row in rows:
        await import_one(session, run, row, partial(_study_visit_row, author_id=author_id))
        progress()
    await say_holds(session, run)
    return run.report


async def _study_visit_row(
    session: AsyncSession, run: PublishingRun, row: Row, *, author_id: uuid.UUID | None
) -> str:
    visit, outcome = await _store_visit(session, run, row, author_id=author_id)
    if visit.status == ReportStatus.published and outcome != "unchanged":
        published_row(session, run, row, "study_visit", visit)
    return outcome


async def _store_visit(
    session: AsyncSession, run: PublishingRun, row: Row, *, author_id: uuid.UUID | None
) -> tuple[StudyVisit, str]:
    raw = dict(row.data)
    status = ReportStatus(raw.pop("status", "draft"))
    await _resolve_refs(session, raw)
    data = StudyVisitCreate.model_validate(raw)
    existing = await repository.find_study_visit_by_ref(session, data.ref) if data.ref else None
    if existing is None:
        existing = await repository.find_same_visit(
            session, title=data.title, host_country=data.host_country, start_date=data.start_date
        )
    if existing is None:
        visit = await service.create_study_visit(
            session, data, by=run.by, is_sample=run.is_sample, status=status, author_id=author_id
        )
        if status is ReportStatus.published:
            outbox.enqueue(session, STUDY_VISIT_CHANGED, visit.id)
        claim(run, row, "study_visit", visit.id)
        return visit, "created"
    claim(run, row, "study_visit", existing.id)
    before = existing.version
    update = StudyVisitUpdate.model_validate(data.model_dump(mode="json", exclude_unset=True))
    await service.update_study_visit(
        session, existing.id, update, expected_version=existing.version, by=run.by
    )
    return existing, "updated" if existing.version != before else "unchanged"


async def _resolve_refs(session: AsyncSession, raw: dict[str, Any]) -> None:
    """Organisations and observed practices named by ref, replaced by their ids in place."""
    if "organising_authority" in raw:
        links = [raw["organising_authority"]]
        raw["organising_authority"] = (
            await organisation_links(session, links, "organising_authority", with_role=False)
        )[0]
    if "host_organisations" in raw:
        raw["host_organisations"] = await organisation_links(
            session, raw["host_organisations"], "host_organisations", with_role=False
        )
    for index, member in enumerate(raw.get("delegation") or []):
        if isinstance(member, dict) and member.get("home_organisation"):
            member["home_organisation"] = (
                await organisation_links(
                    session,
                    [member["home_organisation"]],
                    f"delegation.{index}.home_organisation",
                    with_role=False,
                )
            )[0]
    for index, item in enumerate(raw.get("recommendation_items") or []):
        if isinstance(item, dict) and isinstance(item.get("addressees"), list):
            item["addressees"] = [
                await _addressee(session, a, f"recommendation_items.{index}.addressees.{at}")
                for at, a in enumerate(item["addressees"])
            ]
    if "observed_practice_refs" in raw:
        raw["observed_practice_ids"] = await _practice_ids(
            session, raw.pop("observed_practice_refs")
        )


async def _addressee(session: AsyncSession, value: Any, field: str) -> Any:
    """A recommendation's addressee as the export names it: `EU`, an organisation's id, or
    its ref (replaced by its id)."""
    if not isinstance(value, str) or value == "EU":
        return value
    try:
        return str(uuid.UUID(value))
    except ValueError:
        found = await registry.find_organisation_by_ref(session, value)
        if found is None:
            raise ValueError(f"{field}: no organisation with ref '{value}'") from None
        return str(found.id)


async def _practice_ids(session: AsyncSession, refs: Any) -> list[str]:
    if not isinstance(refs, list):
        raise ValueError("observed_practice_refs: a list of practice refs is required")
    ids = []
    for index, ref in enumerate(refs):
        found = await practices.find_practice_by_ref(session, str(ref))
        if found is None:
            raise ValueError(f"observed_practice_refs.{index}: no practice with ref '{ref}'")
        ids.append(str(found.id))
    return ids


async def export_study_visits(
    session: AsyncSession, *, with_participants: bool
) -> list[dict[str, Any]]:
    """Reports in the shape `study-visits import` reads (organisations and observed practices
    by ref); review comments never, participant names only when asked for."""
    visits = await repository.all_study_visits(session)
    org_refs = await registry.organisation_refs(session)
    practice_refs = await repository.practice_refs(session)
    out = []
    for visit in visits:
        read = await service.study_visit_read(session, visit, by=None)
        row = read.model_dump(
            mode="json",
            exclude=NOT_EXPORTED | (set() if with_participants else {"participant_names"}),
        )
        row["organising_authority"] = _link_ref(row["organising_authority"], org_refs)
        row["host_organisations"] = [_link_ref(o, org_refs) for o in row["host_organisations"]]
        for member in row["delegation"]:
            if member.get("home_organisation"):
                member["home_organisation"] = _link_ref(member["home_organisation"], org_refs)
        row["recommendation_items"] = [
            {
                "text": item.text,
                "addressees": [org_refs.get(o, str(o)) for o in item.organisation_ids]
                + (["EU"] if item.eu_level else []),
            }
            for item in visit.recommendation_items
        ]
        row["observed_practice_refs"] = [
            practice_refs[i] for i in map(str, visit.observed_practice_ids) if i in practice_refs
        ]
        out.append(row)
    return out


def _link_ref(link: dict[str, Any], refs: dict[uuid.UUID, str]) -> dict[str, Any]:
    org_id = link.get("organisation_id")
    ref = refs.get(uuid.UUID(org_id)) if org_id else None
    return {"ref": ref} if ref else {"name": link.get("name")}


def study_visits_csv(rows: list[dict[str, Any]]) -> str:
    """One line a report, for a spreadsheet overview (participants are never in it)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=VISIT_CSV, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        flat = dict(row)
        flat["delegation"] = join(f"{m['count']} {m['profession']}" for m in row["delegation"])
        flat["addressed_to"] = join(row["addressed_to"])
        writer.writerow({k: safe_cell(flat.get(k)) for k in VISIT_CSV})
    return out.getvalue()
