import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, HttpUrl, model_validator

from node.core.schemas import (
    CountryCode,
    LanguageCode,
    Name,
    PartialUpdate,
    Ref,
    ShortText,
    Text,
    unique,
)
from practices.vocabulary import (
    EvaluationType,
    Ideology,
    InterventionType,
    Licence,
    OrganisationRole,
    OutcomeRating,
    PracticeKind,
    PracticeStatus,
    ProcessFocus,
    ReviewLabel,
    Setting,
)
from registry.vocabulary import Level, TargetGroup


class Schema(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Scope(StrEnum):
    """Who may see a practice or a study-visit report, from the widest to the narrowest."""

    public = "public"
    network = "network"
    national = "national"


# How wide each scope is: a scope is narrowed to a smaller number, widened to a larger one.
SCOPE_WIDTH = {Scope.national: 0, Scope.network: 1, Scope.public: 2}
SCOPE_HELP = (
    "Who may see it: `public` (anyone, on this node, at the hub and on every mirror), "
    "`network` (signed-in professionals only: on this node, at the hub and on mirrors, after "
    "signing in there), `national` (signed-in users of this node only: it never leaves the "
    "node). Editors may keep or narrow a scope, never widen it; the National Point changes it "
    "with POST …/scope. Narrowing a published record withdraws it from where it may no longer "
    "be seen (a signed tombstone for `national`), at the hub and on mirrors at their next pull."
)


class ScopeChange(Schema):
    scope: Scope = Field(description=SCOPE_HELP)
    reason: Text | None = Field(None, description="Why, for the audit log.")


class OrganisationLink(Schema):
    """A registry organisation (by id) or, for bodies outside the registry, a free name."""

    organisation_id: uuid.UUID | None = None
    name: Name | None = None
    role: OrganisationRole = OrganisationRole.responsible

    @model_validator(mode="after")
    def _one_of(self) -> Self:
        if (self.organisation_id is None) == (self.name is None):
            raise ValueError("give either organisation_id or name")
        return self


class Translation(Schema):
    language: LanguageCode
    title: Name
    summary: Text | None = None


class Outcome(Schema):
    outcome: ShortText
    rating: OutcomeRating
    source: Text


class Evaluation(Schema):
    type: EvaluationType = EvaluationType.none
    outcomes: Annotated[list[Outcome], Field(max_length=50)] = []

    @model_validator(mode="after")
    def _outcomes_need_evaluation(self) -> Self:
        if self.outcomes and self.type in (EvaluationType.none,):
            raise ValueError("outcomes need an evaluation type other than none")
        return self


class Link(Schema):
    title: ShortText
    url: Annotated[HttpUrl, Field(max_length=500)]


class PracticeFields(Schema):
    ref: Ref | None = None
    kind: PracticeKind
    title: Name
    original_title: Name | None = None
    language: LanguageCode
    summary: Text
    description: Text | None = None
    problem_addressed: Text | None = None
    rationale: Text | None = None
    intervention_types: Annotated[list[InterventionType], AfterValidator(unique)] = []
    process_focus: Annotated[list[ProcessFocus], AfterValidator(unique)] = []
    settings: Annotated[list[Setting], AfterValidator(unique)] = []
    target_groups: Annotated[list[TargetGroup], AfterValidator(unique)] = []
    ideologies: Annotated[list[Ideology], AfterValidator(unique)] = []
    organisations: Annotated[list[OrganisationLink], Field(max_length=50)] = []
    country: CountryCode | None = None
    geographical_scope: Level | None = None
    translations: Annotated[list[Translation], Field(max_length=30)] = []
    start_date: date | None = None
    end_date: date | None = None
    staffing: Text | None = None
    intensity_duration: Text | None = None
    resources_funding: Text | None = None
    evaluation: Evaluation = Evaluation()
    review_label: ReviewLabel = ReviewLabel.self_reported
    sustainability: Text | None = None
    transferability: Text | None = None
    lessons_learned: Text | None = None
    links: Annotated[list[Link], Field(max_length=50)] = []
    licence: Licence
    scope: Scope = Field(Scope.public, description=SCOPE_HELP)


def check_dates(start: date | None, end: date | None, field: str = "end_date") -> None:
    if start is not None and end is not None and end < start:
        raise ValueError(f"{field} cannot be before the start date")


class PracticeCreate(PracticeFields):
    @model_validator(mode="after")
    def _dates(self) -> Self:
        check_dates(self.start_date, self.end_date)
        return self


class PracticeUpdate(PartialUpdate):
    creates = PracticeCreate

    ref: Ref | None = None
    kind: PracticeKind | None = None
    title: Name | None = None
    original_title: Name | None = None
    language: LanguageCode | None = None
    summary: Text | None = None
    description: Text | None = None
    problem_addressed: Text | None = None
    rationale: Text | None = None
    intervention_types: Annotated[list[InterventionType], AfterValidator(unique)] | None = None
    process_focus: Annotated[list[ProcessFocus], AfterValidator(unique)] | None = None
    settings: Annotated[list[Setting], AfterValidator(unique)] | None = None
    target_groups: Annotated[list[TargetGroup], AfterValidator(unique)] | None = None
    ideologies: Annotated[list[Ideology], AfterValidator(unique)] | None = None
    organisations: list[OrganisationLink] | None = None
    country: CountryCode | None = None
    geographical_scope: Level | None = None
    translations: list[Translation] | None = None
    start_date: date | None = None
    end_date: date | None = None
    staffing: Text | None = None
    intensity_duration: Text | None = None
    resources_funding: Text | None = None
    evaluation: Evaluation | None = None
    review_label: ReviewLabel | None = None
    sustainability: Text | None = None
    transferability: Text | None = None
    lessons_learned: Text | None = None
    links: list[Link] | None = None
    licence: Licence | None = None
    scope: Scope | None = Field(None, description=SCOPE_HELP)


class OrganisationLinkRead(OrganisationLink):
    model_config = ConfigDict(extra="ignore")
    display_name: str


class PracticeRead(PracticeFields):
    model_config = ConfigDict(extra="ignore")

    id: uuid.UUID
    organisations: list[OrganisationLinkRead] = []  # type: ignore[assignment]
    status: PracticeStatus
    withdrawn_reason: str | None
    published_at: datetime | None
    held: bool = Field(
        False, description="The personal-data gate holds it: seen by signed-in users only."
    )
    is_sample: bool
    version: int
    created_at: datetime
    updated_at: datetime


class Withdrawal(Schema):
    reason: Annotated[Text, Field(description="Why it is withdrawn; shown with the record.")]
    reason_code: Literal["personal_data"] | None = Field(
        None,
        description="`personal_data`: the record leaked personal data. Its free text is erased"
        " on this node, and the federation purges every earlier body of it wherever it"
        " travelled (a signed redaction to the hub and every mirror).",
    )


class SearchHit(BaseModel):
    id: uuid.UUID
    kind: PracticeKind
    title: str
    original_title: str | None
    country: str | None
    language: str
    summary: str
    snippet: str = Field(
        description="HTML: the matching words wrapped in <mark>, the rest escaped."
    )
    published_at: datetime | None
    held: bool = Field(
        False, description="The personal-data gate holds it: seen by signed-in users only."
    )


class FacetValue(BaseModel):
    value: str
    count: int


class SearchPage(BaseModel):
    items: list[SearchHit]
    total: int
    facets: dict[str, list[FacetValue]]
    next_cursor: str | None
    corrected: str | None = Field(
        default=None,
        description="When a word matched nothing and was corrected against the index's own "
        "words: the query searched instead (words as the index holds them, word stems).",
    )


# --- publishing: the publisher's confirmation and the personal-data gate's verdict ---------

CONFIRM_NO_PERSON = (
    "On a node that federates: the publisher confirms that the free text names no person the "
    "node cannot know (the personal-data gate finds only the people it knows, and numbers, "
    "addresses and the like). Required to publish there; recorded in the audit log."
)


class Publication(Schema):
    confirm_no_person: bool = Field(False, description=CONFIRM_NO_PERSON)


class GateFinding(BaseModel):
    """One finding of the personal-data gate that keeps a record from the federation's feed."""

    field: str = Field(
        description="The shared field, e.g. 'description' or 'organisations.0.name'."
    )
    words: str = Field(description="The words that fired, as written.")
    detector: str = Field(description="What fired, e.g. 'a name of a person this node knows'.")
    context: str = Field(description="The words with up to 40 characters on each side.")
    reason: str | None = Field(None, description="For a text the federation refuses: why.")


HOLD = (
    "What the personal-data gate found (empty: the record travels to the federation). A held "
    "record is published on this node, seen by its signed-in users only, and kept from the feed "
    "until its text is fixed or an administrator releases it (GET /api/v1/federation/holds)."
)


class PracticePublished(PracticeRead):
    hold: list[GateFinding] = Field([], description=HOLD)
