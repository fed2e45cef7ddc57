"""What the API, the CLI and the web interface accept and return for needs."""

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field

from node.core.schemas import PartialUpdate, Schema, Text, unique
from practices.needs.vocabulary import NeedKind, NeedStatus
from practices.vocabulary import InterventionType, Setting
from registry.vocabulary import Area, TargetGroup

DESCRIPTION_HELP = (
    "What is needed, in your words. It may name people: it stays on this node and is shown "
    "only to those who may see the organisation's needs; only counts of kinds and terms are "
    "ever shared with the hub."
)
SHARED_HELP = (
    "Whether this need counts in the aggregated figures shared with the hub (kind and terms, "
    "never the text or the organisation)."
)
Description = Annotated[Text, Field(max_length=5000, description=DESCRIPTION_HELP)]


class NeedTags(Schema):
    target_groups: Annotated[list[TargetGroup], AfterValidator(unique)] = []
    settings: Annotated[list[Setting], AfterValidator(unique)] = []
    areas: Annotated[list[Area], AfterValidator(unique)] = []
    intervention_types: Annotated[list[InterventionType], AfterValidator(unique)] = []


class NeedCreate(NeedTags):
    organisation_id: uuid.UUID
    kind: NeedKind
    description: Description
    shared: bool = Field(True, description=SHARED_HELP)


class NeedUpdate(PartialUpdate):
    """A partial update: the status (with a note saying how the need was addressed), the
    kind, the terms, the text, whether it is counted in what is shared."""

    creates = NeedCreate

    kind: NeedKind | None = None
    target_groups: Annotated[list[TargetGroup], AfterValidator(unique)] | None = None
    settings: Annotated[list[Setting], AfterValidator(unique)] | None = None
    areas: Annotated[list[Area], AfterValidator(unique)] | None = None
    intervention_types: Annotated[list[InterventionType], AfterValidator(unique)] | None = None
    description: Description | None = None
    shared: bool | None = None
    status: NeedStatus | None = None
    status_note: Annotated[Text, Field(max_length=5000)] | None = None


class OrganisationRef(BaseModel):
    id: uuid.UUID
    name: str | None


class NeedRead(BaseModel):
    id: uuid.UUID
    organisation: OrganisationRef
    kind: NeedKind
    target_groups: list[str]
    settings: list[str]
    areas: list[str]
    intervention_types: list[str]
    description: str
    status: NeedStatus
    status_note: str | None
    addressed_at: datetime | None
    shared: bool
    recorded_by: str
    created_at: datetime
    updated_at: datetime
    version: int


class KindCount(BaseModel):
    kind: str
    open: int
    addressed: int


class NeedGroup(BaseModel):
    """Needs of one kind recorded for one organisation, concerning one term of one facet
    (`facet` and `term` null: all of them, whatever their terms)."""

    kind: str
    organisation: OrganisationRef
    facet: str | None
    term: str | None
    open: int
    addressed: int


class NeedSummary(BaseModel):
    """The National Point's grouped view: counts by kind, and by kind, organisation and term."""

    open: int
    addressed: int
    kinds: list[KindCount]
    groups: list[NeedGroup]
