"""What the registry's API and import take and give: organisations, contact points, protocols."""

import uuid
from datetime import date, datetime
from typing import Annotated

from pydantic import AfterValidator, ConfigDict, EmailStr, Field, HttpUrl, StringConstraints

from node.core.schemas import (
    CountryCode,
    LanguageCode,
    Name,
    PartialUpdate,
    Printable,
    Ref,
    Schema,
    ShortText,
    Text,
    bounded,
    unique,
)
from registry.vocabulary import (
    Area,
    ContactStatus,
    Level,
    MeetingFrequency,
    OrganisationKind,
    OrganisationStatus,
    PartyRole,
    PhoneType,
    ProtocolStatus,
    Sector,
    TargetGroup,
)


def _not_future(value: date | None) -> date | None:
    if value is not None and value > date.today():
        raise ValueError("a verification date cannot be in the future")
    return value


Code = Annotated[str, bounded(100), Printable]
Tiny = Annotated[str, bounded(40), Printable]
VerifiedDate = Annotated[date | None, AfterValidator(_not_future)]
Url = Annotated[HttpUrl, Field(max_length=500)]


class LocalName(Schema):
    language: LanguageCode
    name: Name


class Identifier(Schema):
    scheme: Annotated[Code, StringConstraints(pattern=r"^[^:;]+$")]
    value: ShortText


def _identifiers_unique(value: list[Identifier]) -> list[Identifier]:
    keys = [(i.scheme, i.value) for i in value]
    if len(set(keys)) != len(keys):
        raise ValueError("the same identifier is listed twice")
    return value


Identifiers = Annotated[list[Identifier], AfterValidator(_identifiers_unique)]


class Address(Schema):
    street: Name | None = None
    locality: ShortText | None = None
    postal_code: Annotated[str, bounded(20), Printable] | None = None
    region: ShortText | None = None


class OrganisationFields(Schema):
    """Fields shared by create, update (all optional there) and read."""

    ref: Ref | None = None
    name: Name
    local_names: list[LocalName] = []
    identifiers: Identifiers = []
    kind: OrganisationKind
    sector: Sector
    level: Level
    country: CountryCode
    region: ShortText | None = None
    parent_id: uuid.UUID | None = None
    legal_basis: Text | None = None
    description: Text | None = None
    areas: Annotated[list[Area], AfterValidator(unique)] = []
    services: Annotated[list[ShortText], AfterValidator(unique)] = []
    target_groups: Annotated[list[TargetGroup], AfterValidator(unique)] = []
    languages: Annotated[list[LanguageCode], AfterValidator(unique)] = []
    website: Url | None = None
    address: Address | None = None
    single_point_of_contact: bool = False
    status: OrganisationStatus = OrganisationStatus.active
    last_verified_date: VerifiedDate = None


class OrganisationCreate(OrganisationFields):
    pass


class OrganisationUpdate(PartialUpdate):
    """A partial update: only the fields sent are changed."""

    creates = OrganisationCreate

    ref: Ref | None = None
    name: Name | None = None
    local_names: list[LocalName] | None = None
    identifiers: Identifiers | None = None
    kind: OrganisationKind | None = None
    sector: Sector | None = None
    level: Level | None = None
    country: CountryCode | None = None
    region: ShortText | None = None
    parent_id: uuid.UUID | None = None
    legal_basis: Text | None = None
    description: Text | None = None
    areas: Annotated[list[Area], AfterValidator(unique)] | None = None
    services: Annotated[list[ShortText], AfterValidator(unique)] | None = None
    target_groups: Annotated[list[TargetGroup], AfterValidator(unique)] | None = None
    languages: Annotated[list[LanguageCode], AfterValidator(unique)] | None = None
    website: Url | None = None
    address: Address | None = None
    single_point_of_contact: bool | None = None
    status: OrganisationStatus | None = None
    last_verified_date: VerifiedDate = None


class Phone(Schema):
    number: Tiny
    extension: Annotated[str, bounded(10), Printable] | None = None
    type: PhoneType = PhoneType.landline
    description: ShortText | None = None


class ContactPointFields(Schema):
    name: ShortText | None = None
    title: ShortText | None = None
    department: ShortText | None = None
    email: EmailStr | None = None
    phones: list[Phone] = []
    languages: Annotated[list[LanguageCode], AfterValidator(unique)] = []
    hours: Name | None = None
    available_24_7: bool = False
    is_primary: bool = False
    last_verified_date: VerifiedDate = None
    status: ContactStatus = ContactStatus.active


class ContactPointCreate(ContactPointFields):
    pass


class ContactPointUpdate(PartialUpdate):
    creates = ContactPointCreate

    name: ShortText | None = None
    title: ShortText | None = None
    department: ShortText | None = None
    email: EmailStr | None = None
    phones: list[Phone] | None = None
    languages: Annotated[list[LanguageCode], AfterValidator(unique)] | None = None
    hours: Name | None = None
    available_24_7: bool | None = None
    is_primary: bool | None = None
    last_verified_date: VerifiedDate = None
    status: ContactStatus | None = None


class ContactPointRead(ContactPointFields):
    model_config = ConfigDict(extra="ignore")

    id: uuid.UUID
    organisation_id: uuid.UUID
    is_sample: bool
    version: int
    created_at: datetime
    updated_at: datetime


class OrganisationRead(OrganisationFields):
    model_config = ConfigDict(extra="ignore")

    id: uuid.UUID
    is_sample: bool
    version: int
    created_at: datetime
    updated_at: datetime
    # Present only when asked for (?include=contact_points) by a signed-in user.
    contact_points: list[ContactPointRead] | None = None


class PartyIn(Schema):
    organisation_id: uuid.UUID
    role: PartyRole = PartyRole.party
    responsibilities: Text | None = None


class PartyRead(PartyIn):
    organisation_name: str


class ProtocolFields(Schema):
    ref: Ref | None = None
    title: Name
    country: CountryCode
    purpose: Text | None = None
    principles: Text | None = None
    information_sharing_rules: Text | None = None
    reporting_procedure: Text | None = None
    meeting_frequency: MeetingFrequency | None = None
    signed_date: date | None = None
    review_date: date | None = None
    status: ProtocolStatus = ProtocolStatus.draft
    document_url: Url | None = None


class ProtocolCreate(ProtocolFields):
    parties: Annotated[list[PartyIn], Field(min_length=2)]


class ProtocolUpdate(PartialUpdate):
    creates = ProtocolCreate

    ref: Ref | None = None
    title: Name | None = None
    country: CountryCode | None = None
    purpose: Text | None = None
    principles: Text | None = None
    information_sharing_rules: Text | None = None
    reporting_procedure: Text | None = None
    meeting_frequency: MeetingFrequency | None = None
    signed_date: date | None = None
    review_date: date | None = None
    status: ProtocolStatus | None = None
    document_url: Url | None = None
    parties: Annotated[list[PartyIn], Field(min_length=2)] | None = None


class ProtocolRead(ProtocolFields):
    model_config = ConfigDict(extra="ignore")

    id: uuid.UUID
    parties: list[PartyRead]
    is_sample: bool
    version: int
    created_at: datetime
    updated_at: datetime
