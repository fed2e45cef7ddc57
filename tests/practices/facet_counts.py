"""Facet counts worked out from practice records themselves (the sample file, or what the API
returned when they were written), never from the search index: what the index must agree with.

A record is filed under each value of each facet; a facet's counts apply every filter but its
own (OR within a facet, AND across facets), and only values with at least one record appear.
"""

from collections import Counter
from typing import Any

LIST_FACETS = {
    "intervention_type": "intervention_types",
    "setting": "settings",
    "target_group": "target_groups",
    "process_focus": "process_focus",
}

Filed = dict[str, set[str]]


def filed_under(record: dict[str, Any]) -> Filed:
    """The values a practice is filed under, by facet, from its own fields."""
    evaluation = record.get("evaluation") or {}
    return {
        "country": {record["country"]} if record.get("country") else set(),
        "kind": {record["kind"]},
        "evaluation_type": {evaluation.get("type", "none")},
        "language": {record["language"], *(t["language"] for t in record.get("translations", []))},
        "licence": {record["licence"]},
    } | {facet: set(record.get(field) or []) for facet, field in LIST_FACETS.items()}


def passes(filed: Filed, filters: dict[str, list[str]], *, skip: str | None = None) -> bool:
    return all(filed[facet] & set(values) for facet, values in filters.items() if facet != skip)


def expected_total(records: list[Filed], filters: dict[str, list[str]]) -> int:
    return sum(passes(filed, filters) for filed in records)


def expected_facets(
    records: list[Filed], filters: dict[str, list[str]]
) -> dict[str, dict[str, int]]:
    facets = records[0].keys() if records else ()
    return {
        facet: dict(
            Counter(
                value
                for filed in records
                if passes(filed, filters, skip=facet)
                for value in filed[facet]
            )
        )
        for facet in facets
    }


def facet_counts(page: dict[str, Any]) -> dict[str, dict[str, int]]:
    """The counts a search page gives, in the same shape."""
    return {
        facet: {entry["value"]: entry["count"] for entry in values}
        for facet, values in page["facets"].items()
    }
