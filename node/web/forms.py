"""Forms of the working pages: what a form sent, as the API's schemas take it, and the API's
refusals as messages beside the fields they concern.

A form is read into the same values a JSON client sends, and validated by the same Pydantic
schema and service, so a browser meets exactly the API's rules. Each refusal becomes a
`Problem`: a message id of the catalogue with its parameters (translated where shown), keyed
by the form field's name (`phones.0.number`, `address.street`).
"""

import re
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from node.core.errors import AppError, InvalidInput, NotFound, PreconditionFailed
from node.web.i18n import N_

LIST_SPLIT = re.compile(r"[\n,;]+")


@dataclass(frozen=True)
class Problem:
    message: str  # a msgid of the catalogue
    params: Mapping[str, Any] = field(default_factory=dict)


# Pydantic's error types as the reader is told them; any other says Pydantic's own words.
BY_TYPE = {
    "missing": N_("This field is required."),
    "string_type": N_("This field is required."),
    "string_too_short": N_("At least %(min_length)s characters."),
    "string_too_long": N_("At most %(max_length)s characters."),
    "too_long": N_("At most %(max_length)s entries."),
    "too_short": N_("At least %(min_length)s entries."),
    "enum": N_("Choose one of the values offered."),
    "literal_error": N_("Choose one of the values offered."),
    "url_parsing": N_("Not a web address (https://…)."),
    "url_scheme": N_("Not a web address (https://…)."),
    "url_type": N_("Not a web address (https://…)."),
    "date_parsing": N_("Not a date (YYYY-MM-DD)."),
    "date_from_datetime_parsing": N_("Not a date (YYYY-MM-DD)."),
    "int_parsing": N_("Not a whole number."),
    "uuid_parsing": N_("Choose one of the values offered."),
}
# The registry's own refusals (`InvalidInput`, `ValueError`), by how their message starts.
BY_TEXT = [
    ("not a phone number", N_("Not a phone number.")),
    ("not a valid number in", N_("Not a valid phone number here or in international (+…) format.")),
    (
        "a verification date cannot be in the future",
        N_("A verification date cannot be in the future."),
    ),
    ("cannot be emptied", N_("This field cannot be emptied.")),
    ("a contact point needs a name or a function", N_("Give a name or a function.")),
    (
        "a contact point needs an e-mail address or a phone",
        N_("Give an e-mail address or a phone number."),
    ),
    ("value is not a valid email address", N_("Not an e-mail address.")),
    ("an organisation cannot sit below itself", N_("An organisation cannot sit below itself.")),
    (
        "review_date cannot be before signed_date",
        N_("The review date cannot come before the signing date."),
    ),
    ("the same identifier is listed twice", N_("A value is listed twice.")),
    ("the password must be at least", N_("The password must be at least 12 characters.")),
    ("the current password is wrong", N_("The current password is wrong.")),
    ("one of the most common", N_("This password is one of the most common ones: choose another.")),
    (
        "repeats too few characters",
        N_("This password repeats too few characters: choose a longer phrase."),
    ),
    ("contains the account's e-mail", N_("The password contains the account's e-mail address.")),
    ("is not an e-mail address", N_("Not an e-mail address.")),
    ("is already used by", N_("This reference is already used by another record.")),
    ("this party is listed twice", N_("This organisation is listed twice.")),
    ("a peer's URL starts with https://", N_("Not a web address (https://…).")),
    (
        "is plain http:// to another machine",
        N_("Another machine is reached over https:// (plain http:// only on this machine)."),
    ),
    (
        "only where an organisation of yours is a party",
        N_("Name at least one of your organisations among the parties."),
    ),
    (
        "must still include an organisation you are",
        N_("Name at least one of your organisations among the parties."),
    ),
    (
        "is already registered to",
        N_("This identifier is already registered to another organisation."),
    ),
]
OTHER = N_("Not accepted: %(reason)s")


def said(text: str) -> Problem:
    """A service's refusal in its own (English) words, as the catalogue's message for it."""
    for start, message in BY_TEXT:
        if start in text:
            return Problem(message)
    return Problem(OTHER, {"reason": text})


def problems_of(error: ValidationError) -> dict[str, Problem]:
    """Pydantic's refusals by form field (the first one of each field)."""
    out: dict[str, Problem] = {}
    for item in error.errors():
        name = ".".join(str(part) for part in item["loc"]) or "form"
        if item["type"] in BY_TYPE:
            context = {k: v for k, v in (item.get("ctx") or {}).items() if isinstance(v, int)}
            problem = Problem(BY_TYPE[item["type"]], context)
        else:
            problem = said(str(item["msg"]).removeprefix("Value error, "))
        out.setdefault(name, problem)
    return out


def problem_of(error: AppError, default_field: str = "form") -> dict[str, Problem]:
    """A service's refusal, at its field (`InvalidInput`) or for the whole form."""
    if isinstance(error, InvalidInput):
        return {f["field"]: said(f["message"]) for f in error.fields}
    return {default_field: said(str(error))}


def refused(error: AppError) -> dict[str, Problem]:
    """A registry service's refusal: a taken reference at the `ref` field, else the form's."""
    return problem_of(error, "ref" if "ref '" in str(error) else "form")


@dataclass
class Outcome:
    """What became of a form sent: the record stored, or the refusals by field, or `stale`
    (someone else saved the record since the form was drawn: the service's 412)."""

    record: Any = None
    problems: dict[str, Problem] = field(default_factory=dict)
    stale: bool = False


async def submit(
    schema: type[BaseModel], values: dict[str, Any], store: Callable[[Any], Awaitable[Any]]
) -> Outcome:
    """Validate the form's values with the API's schema, then `store` them with the service:
    the same rules as the API, each refusal beside its field."""
    try:
        data = schema.model_validate(values)
    except ValidationError as error:
        return Outcome(problems=problems_of(error))
    try:
        return Outcome(record=await store(data))
    except PreconditionFailed:
        return Outcome(stale=True)
    except AppError as error:
        return Outcome(problems=refused(error))


def parse_id(value: str, what: str) -> uuid.UUID:
    """An id from the address (a malformed one is simply not found)."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(f"No {what} with id {value[:60]}.") from None


def text(form: FormData, name: str) -> str | None:
    """A text field: stripped, None when left empty."""
    value = form.get(name)
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value or None


def lines(form: FormData, name: str) -> list[str]:
    """One entry per line (or comma) of a text area."""
    return [part.strip() for part in LIST_SPLIT.split(text(form, name) or "") if part.strip()]


def chosen(form: FormData, name: str) -> list[str]:
    """The boxes ticked of a group of check boxes."""
    return [v for v in form.getlist(name) if isinstance(v, str) and v]


def ticked(form: FormData, name: str) -> bool:
    return form.get(name) is not None


def version(form: FormData) -> int:
    """The version the form was drawn from (a forged one is simply stale)."""
    value = text(form, "version") or ""
    return int(value) if value.isdigit() and len(value) < 10 else 0


def differences(
    mine: Mapping[str, Any], current: Mapping[str, Any], names: Iterable[str]
) -> list[str]:
    """The fields whose value the user sent differs from the record's current one."""
    return [n for n in names if n in mine and _plain(mine[n]) != _plain(current.get(n))]


def _plain(value: Any) -> Any:
    if value in (None, "", [], {}):
        return None
    if isinstance(value, list):  # the order of ticked boxes is not a change
        return sorted((_plain(v) for v in value), key=str)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if _plain(v) is not None} or None
    return str(value)
