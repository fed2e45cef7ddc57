"""Templates: one Jinja2 environment per language (autoescaping on), and what every page gets."""

import html
import re
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from node.web import i18n
from node.web.deps import csrf_token
from node.web.labels import (
    AUDIT_ACTIONS,
    AUDIT_DETAILS,
    AUDIT_RECORDS,
    VOCABULARIES,
    label,
    refusal,
)

TEMPLATES = Path(__file__).parent / "templates"


def marked(snippet: str) -> Markup:
    """A search snippet: its text escaped again whatever its producer did, only <mark> kept."""
    out = []
    for part in re.split(r"(</?mark>)", snippet):
        out.append(Markup(part) if part in ("<mark>", "</mark>") else escape(html.unescape(part)))
    return Markup("").join(out)


def _iso_day(value: object) -> date | None:
    """A day written as ISO text (a shared record's), or None when it is not one."""
    try:
        return date.fromisoformat(value) if isinstance(value, str) and value else None
    except ValueError:
        return None


def _environment(language: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(i18n.TRANSLATIONS[language], newstyle=True)  # type: ignore[attr-defined]
    gettext = i18n.gettext_for(language)

    def vocab(vocabulary: type[StrEnum], code: str) -> str:
        return gettext(label(vocabulary, code))

    def said(table: dict[str, str]) -> Any:
        """A code of the service (an audit action, a record type) as a reader reads it."""
        return lambda code: gettext(table[code]) if code in table else code

    env.globals |= {
        "vocab": vocab,
        "marked": marked,
        "country": lambda code: i18n.country_name(code, language),
        "language_name": lambda code: i18n.language_name(code, language),
        "day": lambda value: i18n.format_day(value, language),
        "day_text": lambda value: i18n.format_day(_iso_day(value), language),
        "number": lambda value: i18n.format_number(value, language),
        "audit_action": said(AUDIT_ACTIONS),
        "audit_record": said(AUDIT_RECORDS),
        "audit_detail": said(AUDIT_DETAILS),
        "refusal": lambda reason: gettext(refusal(reason)),
        "AUDIT_ACTIONS": AUDIT_ACTIONS,
        "AUDIT_RECORDS": AUDIT_RECORDS,
        "LANGUAGES": i18n.LANGUAGES,
        **VOCABULARIES,
    }
    return env


ENVIRONMENTS = {language: _environment(language) for language in i18n.LANGUAGES}


def page(
    request: Request, template: str, context: dict[str, Any], *, status_code: int = 200
) -> HTMLResponse:
    language = i18n.language_of(request)
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    principal = getattr(request.state, "principal", None)
    body = (
        ENVIRONMENTS[language]
        .get_template(template)
        .render(
            request=request,
            lang=language,
            here=here,
            here_query=urlencode({"next": here}),
            principal=principal,
            csrf_token=csrf_token(request),
            role=request.app.state.settings.role,
            **context,
        )
    )
    return HTMLResponse(body, status_code=status_code)
