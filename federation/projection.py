"""The shareable projection: what of a record may travel, as an explicit allow-list.

Written once, here, and used by the feed, the personal-data gate and the tests. A field not
listed in these models never leaves the node; a field a peer sends that is not listed is
refused (`extra="forbid"`). Contact points, users, participant names and the audit log have no
projection at all.
"""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Text = Annotated[str, Field(max_length=20_000)]
Short = Annotated[str, Field(max_length=300)]
Code = Annotated[str, Field(max_length=60)]
IsoDate = Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Body(Strict):
    """An organisation named in a shared record: its public name and country, nothing else."""

    name: Short
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] | None = None
    role: Code | None = None


class Translation(Strict):
    language: Code
    title: Short
    summary: Text | None = None


class Outcome(Strict):
    outcome: Short
    rating: Code
    source: Text


class Evaluation(Strict):
    type: Code
    outcomes: list[Outcome] = []


class Link(Strict):
    title: Short
    url: Annotated[str, Field(max_length=500)]


class SharedPractice(Strict):
    kind: Code
    title: Short
    original_title: Short | None = None
    language: Code
    summary: Text
    description: Text | None = None
    problem_addressed: Text | None = None
    rationale: Text | None = None
    intervention_types: list[Code] = []
    process_focus: list[Code] = []
    settings: list[Code] = []
    target_groups: list[Code] = []
    ideologies: list[Code] = []
    organisations: list[Body] = []
    country: Code | None = None
    geographical_scope: Code | None = None
    translations: list[Translation] = []
    start_date: IsoDate | None = None
    end_date: IsoDate | None = None
    staffing: Text | None = None
    intensity_duration: Text | None = None
    resources_funding: Text | None = None
    evaluation: Evaluation
    review_label: Code
    sustainability: Text | None = None
    transferability: Text | None = None
    lessons_learned: Text | None = None
    links: list[Link] = []
    licence: Code


class DelegationGroup(Strict):
    """Who visited, as professions and counts: never names."""

    profession: Short
    count: Annotated[int, Field(ge=1, le=1000)]
    home_organisation: Body | None = None


class SharedStudyVisit(Strict):
    title: Short
    language: Code
    organising_authority: Body
    host_country: Code
    host_organisations: list[Body] = []
    start_date: IsoDate
    end_date: IsoDate
    purpose: Text
    programme: Text | None = None
    delegation: list[DelegationGroup]
    observed_practices: list[Short] = []
    observations: Text | None = None
    findings: Text | None = None
    recommendations: Text | None = None
    transferability: Text | None = None
    addressed_to: list[Short] = []


RecordType = Literal["practice", "study_visit"]
SCHEMAS: dict[str, type[Strict]] = {"practice": SharedPractice, "study_visit": SharedStudyVisit}


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
