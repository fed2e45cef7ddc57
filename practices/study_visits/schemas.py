"""What the API and the import accept and return for study-visit reports."""

import uuid
from datetime import date, datetime
from typing import Annotated, Literal, Self

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
from practices.vocabulary import RecommendationStatus, ReportStatus


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


EU_LEVEL = "EU"
Day = date  # a field named `date` below
ADDRESSEES_HELP = (
    "Whom it is addressed to: organisations of the registry (by id) and/or `EU` (the EU level)."
    " Their primary contact points are told by mail when the report is published."
)


class RecommendationItem(Schema):
    """One recommendation of a report, addressed to organisations of the registry or the EU."""

    text: Text
    addressees: Annotated[
        list[uuid.UUID | Literal["EU"]], Field(min_length=1, description=ADDRESSEES_HELP)
    ]


class StudyVisitCreate(StudyVisitFields):
    recommendation_items: Annotated[
        list[RecommendationItem],
        Field(
            description="The recommendations as items, each followed up by its addressees"
            " (`recommendations` stays the report's own summary of them)."
        ),
    ] = []

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
    recommendation_items: list[RecommendationItem] | None = None
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


class AddresseeRead(BaseModel):
    """An addressee: an organisation of the registry (its id and name), or the EU level
    (`organisation_id` null, `eu_level` true)."""

    organisation_id: uuid.UUID | None = None
    name: str
    eu_level: bool = False


class StatusChangeRead(BaseModel):
    status: RecommendationStatus
    date: Day
    note: str | None = None


class RecommendationRead(BaseModel):
    id: uuid.UUID
    study_visit_id: uuid.UUID
    report_title: str
    report_status: ReportStatus
    position: int
    text: str
    addressees: list[AddresseeRead]
    status: RecommendationStatus
    status_date: date | None
    history: list[StatusChangeRead]


class StatusChange(Schema):
    """A recommendation's new status (by its addressee's editors or the National Point)."""

    status: RecommendationStatus
    note: Text | None = Field(None, description="What was decided or done; kept on this node.")
    date: Annotated[Day | None, Field(description="The day it took effect (default: today).")] = (
        None
    )


class NoticeRead(BaseModel):
    """The mail telling an addressee of a published report: `pending`, `sent`, `failed`
    (retried; `last_error` says why) or `no_contact` (no primary contact point with an
    e-mail address)."""

    organisation_id: uuid.UUID
    name: str
    state: str
    attempts: int
    last_error: str | None
    sent_at: datetime | None


class VisitWithdrawal(Schema):
    reason: Annotated[Text, Field(description="Why it is withdrawn; shown with the report.")]
    reason_code: Literal["personal_data"] | None = Field(
        None,
        description="`personal_data`: the report named someone. Its free text and participants"
        " are erased on this node, and the federation purges every earlier body of it wherever"
        " it travelled (a signed redaction to the hub and every mirror).",
    )


class StudyVisitRead(StudyVisitFields):
    model_config = ConfigDict(extra="ignore")

    recommendation_items: list[RecommendationRead] = []
    withdrawn_reason: str | None = None

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
