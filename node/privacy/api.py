"""The privacy routes, for administrators: a data subject's places, their export, their
erasure; retention; the record of processing. A person is named in the request's body, never
in its URL (URLs are logged)."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from node.core.auth import AdminUser
from node.core.deps import SessionDep, SettingsDep
from node.core.errors import Conflict, Forbidden, InvalidInput, responses
from node.core.schemas import Printable, bounded
from node.privacy import record as processing
from node.privacy import service
from node.privacy.render import export_markdown

router = APIRouter(prefix="/api/v1/privacy", tags=["privacy"])
Identifier = Annotated[str, bounded(200), Printable]
MARKDOWN = "text/markdown; charset=utf-8"


class PersonQuery(BaseModel):
    names: Annotated[list[Identifier], Field(max_length=20)] = Field(
        default=[], description="the person's names, in any script (inflected forms match)"
    )
    emails: Annotated[list[Identifier], Field(max_length=20)] = []
    phones: Annotated[list[Identifier], Field(max_length=20)] = []
    request: str | None = Field(
        None, description="the request's reference (e.g. DSR-2026-014), kept in the audit log"
    )

    def person(self) -> service.Person:
        return service.Person(tuple(self.names), tuple(self.emails), tuple(self.phones)).checked()


class Erase(PersonQuery):
    request: str = Field(description="the request's reference, required: the audit names it")
    confirm: Literal[True] = Field(description="true: the places `find` lists are erased")


class PlaceRead(BaseModel):
    kind: str
    id: str
    field: str
    found: list[str]
    value: Any


class Places(BaseModel):
    request: str | None
    count: int
    places: list[PlaceRead]


class ErasureRead(BaseModel):
    request: str
    erased: dict[str, int] = Field(description="what was removed or pseudonymised, by kind")
    redacted: list[str] = Field(description="shared records republished without the person")


class RetentionRead(BaseModel):
    kind: str
    period_days: int
    count: int
    kept_forever: bool


ERRORS = responses(Forbidden, InvalidInput)


@router.post("/find", response_model=Places, responses=ERRORS)
async def find(
    data: PersonQuery, session: SessionDep, settings: SettingsDep, by: AdminUser
) -> Places:
    """Every place the person appears on this node (audited by the request's reference)."""
    person = data.person()
    request = service.check_reference(data.request, person, required=False)

    def run(sync: Session) -> list[Any]:
        return service.find(sync, person, settings, by=by, request=request)

    found = await session.run_sync(run)
    items = [PlaceRead.model_validate(p.as_json()) for p in found]
    return Places(request=request, count=len(items), places=items)


@router.post(
    "/export",
    responses=ERRORS | {200: {"content": {"application/json": {}, "text/markdown": {}}}},
)
async def export(
    data: PersonQuery,
    session: SessionDep,
    settings: SettingsDep,
    by: AdminUser,
    format: Literal["json", "markdown"] = "json",
) -> Response:
    """What this node holds about the person, as JSON or Markdown."""
    person = data.person()
    request = service.check_reference(data.request, person, required=False)

    def run(sync: Session) -> dict[str, Any]:
        return service.export(sync, person, settings, by=by, request=request)

    exported = await session.run_sync(run)
    if format == "markdown":
        return PlainTextResponse(export_markdown(exported), media_type=MARKDOWN)
    return Response(_json(exported), media_type="application/json")


def _json(data: Any) -> bytes:
    import json

    return json.dumps(data, ensure_ascii=False, indent=2).encode()


@router.post("/erase", response_model=ErasureRead, responses=ERRORS | responses(Conflict))
async def erase(
    data: Erase, session: SessionDep, settings: SettingsDep, by: AdminUser
) -> ErasureRead:
    """Remove or pseudonymise every place the person appears, in one transaction; a shared
    record that named them is republished without the name and its earlier bodies redacted at
    the hub and every mirror. Audited by the request's reference, never the data."""
    person = data.person()
    request = service.check_reference(data.request, person, required=True)
    assert request is not None

    def run(sync: Session) -> service.Erasure:
        return service.erase(sync, person, settings, by=by, request=request)

    done = await session.run_sync(run)
    return ErasureRead.model_validate(done.as_json())


@router.get("/retention", response_model=list[RetentionRead], responses=responses(Forbidden))
async def retention_due(
    session: SessionDep, settings: SettingsDep, by: AdminUser
) -> list[RetentionRead]:
    """What the retention periods would remove now, by kind (nothing is removed)."""
    return await _retention(session, settings, by, dry_run=True)


@router.post("/retention", response_model=list[RetentionRead], responses=responses(Forbidden))
async def retention_now(
    session: SessionDep, settings: SettingsDep, by: AdminUser
) -> list[RetentionRead]:
    """Apply the retention periods now (the node does every `retention_interval`); audited in
    counts by kind."""
    return await _retention(session, settings, by, dry_run=False)


async def _retention(session: Any, settings: Any, by: Any, *, dry_run: bool) -> list[RetentionRead]:
    def run(sync: Session) -> list[Any]:
        return service.retention(sync, settings, dry_run=dry_run, by=by)

    done = await session.run_sync(run)
    return [RetentionRead.model_validate(r) for r in service.retention_json(done)]


@router.get(
    "/record",
    responses=responses(Forbidden)
    | {200: {"content": {"application/json": {}, "text/markdown": {}}}},
)
async def record_of_processing(
    settings: SettingsDep,
    _admin: AdminUser,
    format: Literal["json", "markdown"] = "json",
) -> Response:
    """The record of processing activities of this node (GDPR art. 30, Directive 2016/680
    art. 24), from its data model and configuration."""
    data = processing.record(settings)
    if format == "markdown":
        return PlainTextResponse(processing.markdown(data), media_type=MARKDOWN)
    return Response(_json(data), media_type="application/json")
