import uuid
from datetime import date, datetime
from typing import Annotated, Any, Generic, Self, TypeVar

import pycountry
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    HttpUrl,
    StringConstraints,
    field_validator,
    model_validator,
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


def _country(value: str) -> str:
    code = value.upper()
    if pycountry.countries.get(alpha_2=code) is None:
        raise ValueError(f"'{value}' is not an ISO 3166-1 alpha-2 country code")
    return code


def _language(value: str) -> str:
    code = value.lower()
    if pycountry.languages.get(alpha_2=code) is None:
        raise ValueError(f"'{value}' is not an ISO 639-1 language code")
    return code


T = TypeVar("T")


def _unique(values: list[T]) -> list[T]:
    return list(dict.fromkeys(values))


def _not_future(value: date | None) -> date | None:
    if value is not None and value > date.today():
        raise ValueError("a verification date cannot be in the future")
    return value


def _printable(value: str) -> str:
    # PostgreSQL cannot store NUL, and no registry text needs control characters.
    if any(ord(c) < 32 and c not in "\t\n\r" for c in value):
        raise ValueError("control characters are not allowed")
    return value


def _bounded(max_length: int) -> StringConstraints:
    return StringConstraints(strip_whitespace=True, min_length=1, max_length=max_length)


Printable = AfterValidator(_printable)
Text = Annotated[str, _bounded(20_000), Printable]
Name = Annotated[str, _bounded(300), Printable]
ShortText = Annotated[str, _bounded(200), Printable]
Code = Annotated[str, _bounded(100), Printable]
Tiny = Annotated[str, _bounded(40), Printable]
Ref = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,99}$")]
CountryCode = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_country)]
LanguageCode = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_language)]
VerifiedDate = Annotated[date | None, AfterValidator(_not_future)]
Url = Annotated[HttpUrl, Field(max_length=500)]


class Schema(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class LocalName(Schema):
    language: LanguageCode
    name: Name


class Identifier(Schema):
    scheme: Code
    value: ShortText


class Address(Schema):
    street: Name | None = None
    locality: ShortText | None = None
    postal_code: Annotated[str, _bounded(20), Printable] | None = None
    region: ShortText | None = None


class OrganisationFields(Schema):
    """Fields shared by create, update (all optional there) and read."""

    ref: Ref | None = None
    name: Name
    local_names: list[LocalName] = []
    identifiers: list[Identifier] = []
    kind: OrganisationKind
    sector: Sector
    level: Level
    country: CountryCode
    region: ShortText | None = None
    parent_id: uuid.UUID | None = None
    legal_basis: Text | None = None
    description: Text | None = None
    areas: Annotated[list[Area], AfterValidator(_unique)] = []
    services: Annotated[list[ShortText], AfterValidator(_unique)] = []
    target_groups: Annotated[list[TargetGroup], AfterValidator(_unique)] = []
    languages: Annotated[list[LanguageCode], AfterValidator(_unique)] = []
    website: Url | None = None
    address: Address | None = None
    single_point_of_contact: bool = False
    status: OrganisationStatus = OrganisationStatus.active
    last_verified_date: VerifiedDate = None

    @field_validator("identifiers")
    @classmethod
    def _identifiers_unique(cls, value: list[Identifier]) -> list[Identifier]:
        keys = [(i.scheme, i.value) for i in value]
        if len(set(keys)) != len(keys):
            raise ValueError("the same identifier is listed twice")
        return value


class OrganisationCreate(OrganisationFields):
    pass


REQUIRED_ON_UPDATE = ("name", "kind", "sector", "level", "country", "status")


class OrganisationUpdate(Schema):
    """A partial update: only the fields sent are changed."""

    ref: Ref | None = None
    name: Name | None = None
    local_names: list[LocalName] | None = None
    identifiers: list[Identifier] | None = None
    kind: OrganisationKind | None = None
    sector: Sector | None = None
    level: Level | None = None
    country: CountryCode | None = None
    region: ShortText | None = None
    parent_id: uuid.UUID | None = None
    legal_basis: Text | None = None
    description: Text | None = None
    areas: Annotated[list[Area], AfterValidator(_unique)] | None = None
    services: Annotated[list[ShortText], AfterValidator(_unique)] | None = None
    target_groups: Annotated[list[TargetGroup], AfterValidator(_unique)] | None = None
    languages: Annotated[list[LanguageCode], AfterValidator(_unique)] | None = None
    website: Url | None = None
    address: Address | None = None
    single_point_of_contact: bool | None = None
    status: OrganisationStatus | None = None
    last_verified_date: VerifiedDate = None

    @model_validator(mode="after")
    def _required_stay_set(self) -> Self:
        for name in REQUIRED_ON_UPDATE:
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be emptied")
        return self


class Phone(Schema):
    number: Tiny
    extension: Annotated[str, _bounded(10), Printable] | None = None
    type: PhoneType = PhoneType.landline
    description: ShortText | None = None


class ContactPointFields(Schema):
    name: ShortText | None = None
    title: ShortText | None = None
    department: ShortText | None = None
    email: EmailStr | None = None
    phones: list[Phone] = []
    languages: Annotated[list[LanguageCode], AfterValidator(_unique)] = []
    hours: Name | None = None
    available_24_7: bool = False
    is_primary: bool = False
    last_verified_date: VerifiedDate = None
    status: ContactStatus = ContactStatus.active


def _check_contact(name: str | None, title: str | None, email: Any, phones: list[Phone]) -> None:
    if not name and not title:
        raise ValueError("a contact point needs a name or a function (title)")
    if not email and not phones:
        raise ValueError("a contact point needs an e-mail address or a phone number")


class ContactPointCreate(ContactPointFields):
    @model_validator(mode="after")
    def _reachable(self) -> Self:
        _check_contact(self.name, self.title, self.email, self.phones)
        return self


class ContactPointUpdate(Schema):
    name: ShortText | None = None
    title: ShortText | None = None
    department: ShortText | None = None
    email: EmailStr | None = None
    phones: list[Phone] | None = None
    languages: Annotated[list[LanguageCode], AfterValidator(_unique)] | None = None
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


def _check_dates(signed: date | None, review: date | None) -> None:
    if signed is not None and review is not None and review < signed:
        raise ValueError("review_date cannot be before signed_date")


def _check_parties(organisation_ids: list[uuid.UUID]) -> None:
    if len(set(organisation_ids)) != len(organisation_ids):
        raise ValueError("an organisation is listed twice among the parties")


class ProtocolCreate(ProtocolFields):
    parties: Annotated[list[PartyIn], Field(min_length=2)]

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        _check_dates(self.signed_date, self.review_date)
        _check_parties([p.organisation_id for p in self.parties])
        return self


class ProtocolUpdate(Schema):
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

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        for name in ("title", "country", "status", "parties"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be emptied")
        _check_dates(self.signed_date, self.review_date)
        if self.parties:
            _check_parties([p.organisation_id for p in self.parties])
        return self


class ProtocolRead(ProtocolFields):
    model_config = ConfigDict(extra="ignore")

    id: uuid.UUID
    parties: list[PartyRead]
    is_sample: bool
    version: int
    created_at: datetime
    updated_at: datetime


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )
