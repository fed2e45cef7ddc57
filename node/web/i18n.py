"""Languages of the interface: Babel catalogues, the reader's language, dates and numbers.

The catalogues are the `.po` files under `locale/`; each language's is compiled in memory the
first time a page is shown in it, so a fresh checkout or an installed package needs no build
step, and a process that shows no page (a worker, a CLI command) compiles none.
"""

import io
from collections.abc import Callable
from datetime import date, datetime
from functools import cached_property
from pathlib import Path

from babel import Locale
from babel.core import UnknownLocaleError
from babel.dates import format_date as _format_date
from babel.messages.catalog import Catalog, Message
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations
from starlette.requests import Request

LOCALE_DIR = Path(__file__).parent / "locale"
# The interface's languages, each named in itself (the switcher shows them so).
LANGUAGES = {
    "en": "English",
    "fr": "Français",
    "pt": "Português",
    "bg": "Български",
    "el": "Ελληνικά",
}
DEFAULT = "en"
COOKIE = "integra_lang"


def N_(message: str) -> str:
    """Mark a string for the catalogue; it is translated where it is shown."""
    return message


def catalogue_files(language: str) -> list[Path]:
    """A language's catalogue parts: `messages.po` and one `.po` per part of the interface
    (`admin.po`, `editing.po`, ...), so each part keeps its own strings apart."""
    folder = LOCALE_DIR / language / "LC_MESSAGES"
    return sorted(folder.glob("*.po"), key=lambda p: (p.name != "messages.po", p.name))


def read_catalogue(language: str) -> list[Message]:
    """Every message of a language, all its parts together (a msgid in two parts is an error)."""
    messages: dict[str, Message] = {}
    for path in catalogue_files(language):
        with path.open("rb") as po:
            for message in read_po(po, locale=language):
                if not message.id:
                    continue
                key = message.id if isinstance(message.id, str) else message.id[0]
                if key in messages:
                    raise ValueError(f"{path.name}: {key!r} is already in another catalogue part")
                messages[key] = message
    return list(messages.values())


def _load(language: str) -> Translations:
    catalog = Catalog(locale=language)
    for message in read_catalogue(language):
        catalog[message.id] = message
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled, domain="messages")


class Catalogue:
    """A language's translations, compiled the first time a string is asked of them (all five
    at import cost some 0.2 s of CPU in every process that imports the web interface, and most
    show pages in one or two). What Jinja's i18n extension and `gettext_for` call."""

    def __init__(self, language: str) -> None:
        self.language = language

    @cached_property
    def compiled(self) -> Translations:
        return _load(self.language)

    def gettext(self, message: str) -> str:
        return self.compiled.gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self.compiled.ngettext(singular, plural, n)

    def pgettext(self, context: str, message: str) -> str | object:  # as Babel's says
        return self.compiled.pgettext(context, message)

    def npgettext(self, context: str, singular: str, plural: str, n: int) -> str:
        return self.compiled.npgettext(context, singular, plural, n)


TRANSLATIONS = {language: Catalogue(language) for language in LANGUAGES}


def gettext_for(language: str) -> Callable[[str], str]:
    return TRANSLATIONS.get(language, TRANSLATIONS[DEFAULT]).gettext


def negotiate(accept_language: str | None) -> str:
    """The first of the reader's languages (by their weights) that the interface speaks."""
    wanted: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                continue
        if tag:
            wanted.append((-weight, position, tag.strip().lower()))
    for weight, _, tag in sorted(wanted):
        primary = tag.split("-")[0]
        if weight < 0 and primary in LANGUAGES:
            return primary
    return DEFAULT


def language_of(request: Request) -> str:
    """The reader's language: the switcher's choice (a cookie), else Accept-Language."""
    chosen = request.cookies.get(COOKIE)
    if chosen in LANGUAGES:
        return chosen
    return negotiate(request.headers.get("accept-language"))


def format_day(value: date | datetime | None, language: str) -> str:
    if value is None:
        return ""
    return _format_date(value, format="long", locale=language)


def format_number(value: int, language: str) -> str:
    return format_decimal(value, locale=language)


def country_name(code: str | None, language: str) -> str:
    if not code:
        return ""
    name = Locale.parse(language).territories.get(code.upper())
    return str(name) if name else code.upper()


def language_name(code: str | None, language: str) -> str:
    if not code:
        return ""
    try:
        name = Locale.parse(language).languages.get(code.lower())
    except UnknownLocaleError:
        name = None
    return str(name)[:1].upper() + str(name)[1:] if name else code
