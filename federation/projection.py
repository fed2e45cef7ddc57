"""The shareable projection: what of a record may travel, as an explicit allow-list.

Written once, here, and used by the feed, the personal-data gate and the tests. A field not
listed in these models never leaves the node; a field a peer sends that is not listed is
refused (`extra="forbid"`). Contact points, users, participant names and the audit log have no
projection at all.

Every value is hostile until checked, because a hub and every mirror store, index and relay it:
- Text refuses control characters (C0 and C1; tab and line breaks only in multi-line text, a
  carriage return only before a line feed), lone surrogates, bidi embeddings, overrides and
  isolates (U+202A-202E, U+2066-2069), deprecated format characters (U+206A-206F), a
  byte-order mark (U+FEFF), interlinear annotations (U+FFF9-FFFB) and tag characters
  (U+E0000-E007F: invisible ASCII); one-line text (titles, names) also refuses zero-width
  spaces, word joiners, invisible operators (U+200B, U+2060-2064, U+180E). Soft hyphens,
  zero-width (non-)joiners and directional marks (LRM, RLM) are ordinary in prose and stay,
  as zero-width spaces pasted into a paragraph do; the gate removes them before it matches.
- Markup is refused, not escaped: text that holds an HTML tag (`<script>`, `<b>`, `</p>`,
  `<!-- -->`) cannot travel. The feed's JSON is never markup, but a peer's text would otherwise
  reach the hub's index and every mirror's pages as it was written; a lone `<` ("age < 25")
  is text.
- Links are absolute `http(s)` URLs with a host and no credentials (`javascript:`, `data:`,
  `file:` are refused).
- Record ids are `CC:local-id` (a country code, then letters, digits, `.`, `_`, `-`), at most
  80 characters: what every database of the federation stores.
- Vocabulary values are the terms this version knows (the practice and registry
  vocabularies, ISO 639-1 languages, ISO 3166-1 countries). A term that a later version adds
  travels as `x-<term>` (lowercase letters, digits, `_`; at most 60 characters) until every
  peer knows it: such a term is kept and shown with the record but not faceted, and a hub
  that knows `<term>` facets `x-<term>` under it (`federation.pool`).
"""

import re
from collections.abc import Iterable
from enum import StrEnum
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import pycountry
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from practices.needs.vocabulary import FACETS as NEED_FACETS
from practices.needs.vocabulary import NeedKind
from practices.vocabulary import (
    EvaluationType,
    Ideology,
    InterventionType,
    Licence,
    OrganisationRole,
    OutcomeRating,
    PracticeKind,
    ProcessFocus,
    RecommendationStatus,
    ReviewLabel,
    Setting,
)
from registry.vocabulary import Level, TargetGroup

# What no text of a shared record may hold (a str holds a surrogate only when it is lone).
FORBIDDEN = (
    "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"  # C0 but tab, line feed, carriage return; DEL; C1
    "\ud800-\udfff"  # lone surrogates: not Unicode text, no database stores them
    "\u202a-\u202e\u2066-\u2069"  # bidi embeddings, overrides and isolates
    "\u206a-\u206f"  # deprecated format characters
    "\ufeff\ufff9-\ufffb"  # a byte-order mark inside text, interlinear annotations
    "\U000e0000-\U000e007f"  # tag characters: invisible ASCII
)
MULTI_LINE = re.compile(f"[{FORBIDDEN}]|\r(?!\n)")
# A title or a name: no line break or tab, and none of the invisible spacing characters
# (zero-width space, word joiner, invisible operators, Mongolian vowel separator) either.
ONE_LINE = re.compile(f"[{FORBIDDEN}\t\n\r\u200b\u2060-\u2064\u180e]")
# Spaces that are printable text but not `str.isprintable` (no-break spaces; in multi-line
# text, line feeds and tabs): made plain spaces before that quick test.
SPACES = ("\u00a0", "\u202f")
MULTI_LINE_SPACES = (*SPACES, "\n", "\t")
MARKUP = re.compile(r"<(?:[/!?]?[A-Za-z][^<>]*>|!--)")  # as HTML reads a tag: no space after <
RECORD_ID = re.compile(r"[A-Z]{2}:[A-Za-z0-9][A-Za-z0-9._-]{0,76}")
EXTRA_TERM = re.compile(r"x-[a-z0-9][a-z0-9_]{0,57}")
WEB_SCHEMES = ("http", "https")


def printable(value: Any, limit: int = 80) -> str:
    """A value quoted in a message (a refusal's reason, a log line): cut to `limit`
    characters, anything not printable (controls, surrogates, format characters) escaped."""
    text = (value if isinstance(value, str) else str(value))[:limit]
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def _problem(value: str, characters: re.Pattern[str]) -> str | None:
    """Why a text cannot travel, or None. Every character refused is unprintable (Unicode's
    Cc, Cf, Cs), so text that is printable but for its spaces (nearly all of it) is let
    through by `str.isprintable`, many times faster than the pattern."""
    probe = value
    for space in MULTI_LINE_SPACES if characters is MULTI_LINE else SPACES:
        probe = probe.replace(space, " ")
    if not probe.isprintable():
        found = characters.search(value)
        if found is not None:
            return f"the character U+{ord(found.group()[0]):04X} is not allowed in this text"
    if "<" in value and MARKUP.search(value) is not None:
        return "markup (an HTML tag) is not allowed in shared text"
    return None


def _checked(characters: re.Pattern[str]) -> AfterValidator:
    def check(value: str) -> str:
        problem = _problem(value, characters)
        if problem:
            raise ValueError(problem)
        return value

    return AfterValidator(check)


def text_problem(value: str, *, multi_line: bool = True) -> str | None:
    """Why a text cannot travel in a shared record (None: it can)."""
    return _problem(value, MULTI_LINE if multi_line else ONE_LINE)


def _record_id(value: str) -> str:
    if not RECORD_ID.fullmatch(value):
        raise ValueError(
            "a record id is CC:local-id (letters, digits, . _ -), 80 characters at most"
        )
    return value


def _web_link(value: str) -> str:
    if any(c.isspace() for c in value):
        raise ValueError("a link holds no spaces")
    parts = urlsplit(value)
    if parts.scheme.lower() not in WEB_SCHEMES or not parts.hostname:
        raise ValueError("a link is an http(s) URL with a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("a link carries no user name or password")
    return value


def _terms(name: str, known: Iterable[str]) -> AfterValidator:
    """A controlled term: one this version knows, or a later version's `x-<term>`."""
    values = frozenset(known)

    def check(value: str) -> str:
        if value not in values and not EXTRA_TERM.fullmatch(value):
            raise ValueError(
                f"'{printable(value, 60)}' is not a known {name} term"
                " (a newer one travels as x-<term>)"
            )
        return value

    return AfterValidator(check)


def _of(enum: type[StrEnum]) -> list[str]:
    return [member.value for member in enum]


LANGUAGES = [lang.alpha_2 for lang in pycountry.languages if hasattr(lang, "alpha_2")]
COUNTRIES = [country.alpha_2 for country in pycountry.countries] + ["XK", "EU"]
Text = Annotated[str, Field(max_length=20_000), _checked(MULTI_LINE)]
Short = Annotated[str, Field(max_length=300), _checked(ONE_LINE)]
RecordId = Annotated[str, Field(max_length=80), AfterValidator(_record_id)]
Url = Annotated[str, Field(max_length=500), _checked(ONE_LINE), AfterValidator(_web_link)]
Language = Annotated[str, Field(max_length=2), _terms("language", LANGUAGES)]
Country = Annotated[str, Field(max_length=2), _terms("country", COUNTRIES)]
Kind = Annotated[str, Field(max_length=60), _terms("kind", _of(PracticeKind))]
Intervention = Annotated[str, Field(max_length=60), _terms("intervention", _of(InterventionType))]
Focus = Annotated[str, Field(max_length=60), _terms("process focus", _of(ProcessFocus))]
Place = Annotated[str, Field(max_length=60), _terms("setting", _of(Setting))]
Group = Annotated[str, Field(max_length=60), _terms("target group", _of(TargetGroup))]
Ideologies = Annotated[str, Field(max_length=60), _terms("ideology", _of(Ideology))]
Scope = Annotated[str, Field(max_length=60), _terms("geographical scope", _of(Level))]
Role = Annotated[str, Field(max_length=60), _terms("organisation role", _of(OrganisationRole))]
Evaluated = Annotated[str, Field(max_length=60), _terms("evaluation type", _of(EvaluationType))]
Rating = Annotated[str, Field(max_length=60), _terms("outcome rating", _of(OutcomeRating))]
Review = Annotated[str, Field(max_length=60), _terms("review label", _of(ReviewLabel))]
Licensed = Annotated[str, Field(max_length=60), _terms("licence", _of(Licence))]
IsoDate = Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$")]
FollowUp = Annotated[
    str, Field(max_length=60), _terms("recommendation status", _of(RecommendationStatus))
]
# The facets whose terms a hub counts, and the terms each knows (for `x-<term>`).
FACET_TERMS: dict[str, frozenset[str]] = {
    "kind": frozenset(_of(PracticeKind)),
    "intervention_type": frozenset(_of(InterventionType)),
    "process_focus": frozenset(_of(ProcessFocus)),
    "setting": frozenset(_of(Setting)),
    "target_group": frozenset(_of(TargetGroup)),
    "evaluation_type": frozenset(_of(EvaluationType)),
    "licence": frozenset(_of(Licence)),
    "language": frozenset(LANGUAGES),
}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Body(Strict):
    """An organisation named in a shared record: its public name and country, nothing else."""

    name: Short
    country: Country | None = None
    role: Role | None = None


class Translation(Strict):
    language: Language
    title: Short
    summary: Text | None = None


class Outcome(Strict):
    outcome: Short
    rating: Rating
    source: Text


class Evaluation(Strict):
    type: Evaluated
    outcomes: list[Outcome] = []


class Link(Strict):
    title: Short
    url: Url


class SharedPractice(Strict):
    kind: Kind
    title: Short
    original_title: Short | None = None
    language: Language
    summary: Text
    description: Text | None = None
    problem_addressed: Text | None = None
    rationale: Text | None = None
    intervention_types: list[Intervention] = []
    process_focus: list[Focus] = []
    settings: list[Place] = []
    target_groups: list[Group] = []
    ideologies: list[Ideologies] = []
    organisations: list[Body] = []
    # Where the practice runs, as the record says: shown with it, never the country facet
    # (that is the origin's: a node cannot speak for another country).
    country: Country | None = None
    geographical_scope: Scope | None = None
    translations: list[Translation] = []
    start_date: IsoDate | None = None
    end_date: IsoDate | None = None
    staffing: Text | None = None
    intensity_duration: Text | None = None
    resources_funding: Text | None = None
    evaluation: Evaluation
    review_label: Review
    sustainability: Text | None = None
    transferability: Text | None = None
    lessons_learned: Text | None = None
    links: list[Link] = []
    licence: Licensed


class DelegationGroup(Strict):
    """Who visited, as professions and counts: never names."""

    profession: Short
    count: Annotated[int, Field(ge=1, le=1000)]
    home_organisation: Body | None = None


class StatusStep(Strict):
    """A step of a recommendation's follow-up: the status and the day (its note stays on
    the node)."""

    status: FollowUp
    date: IsoDate


class SharedRecommendation(Strict):
    """A recommendation and what became of it, addressed to organisations by their public
    name and country, or to the EU level (`{"name": "EU level", "country": "EU"}`): never a
    contact point or a person."""

    text: Text
    addressees: list[Body] = []
    status: FollowUp
    status_date: IsoDate | None = None
    history: list[StatusStep] = []


class SharedStudyVisit(Strict):
    title: Short
    language: Language
    organising_authority: Body
    host_country: Country
    host_organisations: list[Body] = []
    start_date: IsoDate
    end_date: IsoDate
    purpose: Text
    programme: Text | None = None
    delegation: list[DelegationGroup]
    observed_practices: list[RecordId] = []
    observations: Text | None = None
    findings: Text | None = None
    recommendations: Text | None = None
    transferability: Text | None = None
    addressed_to: list[Short] = []
    recommendation_items: list[SharedRecommendation] = []


# --- needs heard: counts only (issue 17 item 5) ---------------------------------------------
NeedKindTerm = Annotated[str, Field(max_length=60), _terms("need kind", _of(NeedKind))]
NEED_FACET_TERMS: dict[str, frozenset[str]] = {f: frozenset(_of(e)) for f, e in NEED_FACETS.items()}
Count = Annotated[int, Field(ge=0, le=1_000_000)]


class NeedCount(Strict):
    """How many needs of a kind (and, with `facet` and `term`, tagged with that term) a node
    holds, open and addressed: a number, never a text or an organisation."""

    kind: NeedKindTerm
    facet: Literal["target_group", "setting", "area", "intervention_type"] | None = None
    term: Annotated[str, Field(max_length=60)] | None = None
    open: Count
    addressed: Count

    @model_validator(mode="after")
    def _term_of_facet(self) -> "NeedCount":
        if (self.facet is None) != (self.term is None):
            raise ValueError("a facet and a term come together")
        if self.facet is not None and self.term is not None:
            term = self.term
            if term not in NEED_FACET_TERMS[self.facet] and not EXTRA_TERM.fullmatch(term):
                raise ValueError(
                    f"'{printable(term, 60)}' is not a known {self.facet.replace('_', ' ')} term"
                    " (a newer one travels as x-<term>)"
                )
        return self


class SharedNeedsSummary(Strict):
    """A node's needs as counts (one record per node, republished when they change): each
    count made up of needs of at least `min_organisations` organisations of the registry."""

    min_organisations: Annotated[int, Field(ge=1, le=100)]
    counts: Annotated[list[NeedCount], Field(max_length=5000)] = []


RecordType = Literal["practice", "study_visit", "needs_summary"]
SCHEMAS: dict[str, type[Strict]] = {
    "practice": SharedPractice,
    "study_visit": SharedStudyVisit,
    "needs_summary": SharedNeedsSummary,
}


def validate(record_type: str, body: Any) -> Strict:
    """Check a body against the federation schema of its type (unknown fields refused)."""
    return SCHEMAS[record_type].model_validate(body)


def text_fields(value: Any, path: str = "") -> list[tuple[str, str]]:
    """Every string in a body with its path, for the detectors."""
    out: list[tuple[str, str]] = []
    _walk(value, path, out)
    return out


def _walk(value: Any, path: str, out: list[tuple[str, str]]) -> None:
    if isinstance(value, str):
        out.append((path, value))
    elif isinstance(value, dict):
        for key, item in value.items():
            _walk(item, f"{path}.{key}" if path else key, out)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _walk(item, f"{path}.{index}", out)


def text_values(value: Any) -> list[str]:
    """The strings of `text_fields`, in the same order, without their paths."""
    if isinstance(value, str):
        return [value]
    out: list[str] = []
    if isinstance(value, dict | list):
        _values(value, out)
    return out


def _values(container: dict[str, Any] | list[Any], out: list[str]) -> None:
    """The strings inside a container, depth first; strings are taken where they stand, not in
    a call each (a body has dozens)."""
    for item in container.values() if isinstance(container, dict) else container:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict | list):
            _values(item, out)
