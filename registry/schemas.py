import uuid
from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Generic, TypeVar

import pycountry
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    HttpUrl,
    StringConstraints,
    ValidationInfo,
    field_validator,
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
    if code != "XK" and pycountry.countries.get(alpha_2=code) is None:  # XK: Kosovo, as the EU uses
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


def given(
    model: BaseModel, *, mode: str = "python", exclude: set[str] | frozenset[str] = frozenset()
) -> dict[str, Any]:
    """The fields the caller sent, each dumped whole (nested defaults included): a partial
    update changes whole fields, so a nested object is compared and stored complete."""
    full = model.model_dump(mode=mode, exclude=set(exclude))
    return {name: full[name] for name in model.model_fields_set if name in full}


class PartialUpdate(Schema):
    """A partial update: fields left out are kept; null clears a field only where the record
    may be without it (a required field, a list or a flag cannot be nulled)."""

    creates: ClassVar[type[BaseModel]]

    @field_validator("*", mode="after")
    @classmethod
    def _not_null(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.field_name is not None:
            field = cls.creates.model_fields.get(info.field_name)
            if field is not None and (field.is_required() or field.default is not None):
                raise ValueError("cannot be emptied (leave the field out to keep it)")
        return value


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
    postal_code: Annotated[str, _bounded(20), Printable] | None = None
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
    areas: Annotated[list[Area], AfterValidator(_unique)] = []
    services: Annotated[list[ShortText], AfterValidator(_unique)] = []
    target_groups: Annotated[list[TargetGroup], AfterValidator(_unique)] = []
    languages: Annotated[list[LanguageCode], AfterValidator(_unique)] = []
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
    areas: Annotated[list[Area], AfterValidator(_unique)] | None = None
    services: Annotated[list[ShortText], AfterValidator(_unique)] | None = None
    target_groups: Annotated[list[TargetGroup], AfterValidator(_unique)] | None = None
    languages: Annotated[list[LanguageCode], AfterValidator(_unique)] | None = None
    website: Url | None = None
    address: Address | None = None
    single_point_of_contact: bool | None = None
    status: OrganisationStatus | None = None
    last_verified_date: VerifiedDate = None


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


class ContactPointCreate(ContactPointFields):
    pass


class ContactPointUpdate(PartialUpdate):
    creates = ContactPointCreate

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


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )
