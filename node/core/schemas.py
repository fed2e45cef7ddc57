"""Schema furniture every domain shares: the strict base model, partial updates, pages, and
the bounded, printable text and code types that API payloads and import rows are made of."""

import re
from typing import Annotated, Any, ClassVar, Generic, TypeVar

import pycountry
from fastapi import Response
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

T = TypeVar("T")


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


def unique(values: list[T]) -> list[T]:
    """The values in their order, each once (an AfterValidator for lists of terms)."""
    return list(dict.fromkeys(values))


# PostgreSQL cannot store NUL, and no stored text needs control characters (tab, line feed
# and carriage return are text).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _printable(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("control characters are not allowed")
    return value


def bounded(max_length: int) -> StringConstraints:
    """Stripped, not empty, at most `max_length` characters."""
    return StringConstraints(strip_whitespace=True, min_length=1, max_length=max_length)


Printable = AfterValidator(_printable)
Text = Annotated[str, bounded(20_000), Printable]
Name = Annotated[str, bounded(300), Printable]
ShortText = Annotated[str, bounded(200), Printable]
Ref = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,99}$")]
CountryCode = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_country)]
LanguageCode = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_language)]


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


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


def serialised(
    value: BaseModel,
    schema: type[BaseModel],
    *,
    exclude_unset: bool = False,
    headers: dict[str, str] | None = None,
) -> Response:
    """A JSON answer of ``value`` as ``schema`` gives it, serialised once: what the route's
    `response_model` of that schema would send, without validating again what was built from
    stored, validated values (a subclass's own fields are left out, as the model would)."""
    body = schema.__pydantic_serializer__.to_json(value, exclude_unset=exclude_unset)
    return Response(body, media_type="application/json", headers=headers)
