"""What the API and the import accept and return for study-visit reports."""

import uuid
from datetime import date, datetime
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from node.core.schemas import (
    CountryCode,
    LanguageCode,
    Name,
    PartialUpdate,
    Ref,
    Schema,
    ShortText,
    Text,
)
from practices.schemas import (
    CONFIRM_NO_PERSON,
    HOLD,
    SCOPE_HELP,
    GateFinding,
    OrganisationLink,
    Scope,
    check_dates,
)
from practices.vocabulary import ReportStatus


class DelegationMember(Schema):
    profession: ShortText
    count: Annotated[int, Field(ge=1, le=1000)]
    home_organisation: OrganisationLink | None = None


class StudyVisitFields(Schema):
    ref: Ref | None = None
    title: Name
    language: LanguageCode
    organising_authority: OrganisationLink
    host_country: CountryCode
    host_organisations: list[OrganisationLink] = []
    start_date: date
    end_date: date
    purpose: Text
    programme: Text | None = None
    delegation: Annotated[list[DelegationMember], Field(min_length=1)]
    participant_names: Annotated[
        list[ShortText],
        Field(description="Personal data: kept on this node, shown to signed-in users only."),
    ] = []
    observed_practice_ids: list[uuid.UUID] = []
    observations: Text | None = None
    findings: Text | None = None
    recommendations: Text | None = None
    transferability: Text | None = None
    addressed_to: list[ShortText] = []
    scope: Scope = Field(Scope.network, description=SCOPE_HELP)


class StudyVisitCreate(StudyVisitFields):
    @model_validator(mode="after")
    def _dates(self) -> Self:
        check_dates(self.start_date, self.end_date)
        return self


class StudyVisitStart(StudyVisitCreate):
    """A draft begun in steps (the web form): its delegation comes in a later step, so it may
    be empty until the report is submitted (`submit` refuses a report without one)."""

    delegation: list[DelegationMember] = []


class StudyVisitUpdate(PartialUpdate):
    creates = StudyVisitCreate

    ref: Ref | None = None
    title: Name | None = None
    language: LanguageCode | None = None
    organising_authority: OrganisationLink | None = None
    host_country: CountryCode | None = None
    host_organisations: list[OrganisationLink] | None = None
    start_date: date | None = None
    end_date: date | None = None
    purpose: Text | None = None
    programme: Text | None = None
    delegation: Annotated[list[DelegationMember], Field(min_length=1)] | None = None
    participant_names: list[ShortText] | None = None
    observed_practice_ids: list[uuid.UUID] | None = None
    observations: Text | None = None
    findings: Text | None = None
    recommendations: Text | None = None
    transferability: Text | None = None
    addressed_to: list[ShortText] | None = None
    scope: Scope | None = Field(None, description=SCOPE_HELP)


class ReviewComment(Schema):
    comment: Text


class Transition(Schema):
    """A step of the review: `request-changes` needs a comment; `publish`, on a node that
    federates, the publisher's confirmation."""

    comment: Text | None = None
    confirm_no_person: bool = Field(False, description=CONFIRM_NO_PERSON)


class CommentRead(BaseModel):
    author: str
    action: str
    body: str
    created_at: datetime


class StudyVisitRead(StudyVisitFields):
    model_config = ConfigDict(extra="ignore")

    delegation: list[DelegationMember] = []  # a draft begun in steps may have none yet

    id: uuid.UUID
    status: ReportStatus
    author_id: uuid.UUID | None
    submitted_at: datetime | None
    published_at: datetime | None
    comments: list[CommentRead] = []
    is_sample: bool
    version: int
    created_at: datetime
    updated_at: datetime


class StudyVisitPublished(StudyVisitRead):
    hold: list[GateFinding] = Field([], description=HOLD)
