"""Needs heard across Europe: what the hub (or a node mirroring it) shows of every node's needs
summary. Counts only: each node shares its needs as kinds and terms with counts
(`projection.SharedNeedsSummary`, built in `publish.needs_summary_body`), never their text or
organisations. The composition root mounts `router` under /api/v1 (`node.api`)."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from federation.pool import needs_summaries
from node.core.deps import SessionDep
from node.core.errors import responses

router = APIRouter(tags=["hub"])


class NodeNeeds(BaseModel):
    country: str
    version: int = Field(description="the version of the node's summary held")
    received_at: datetime
    min_organisations: int = Field(
        description="each count of this node is made of needs of at least this many organisations"
    )


class CountryCount(BaseModel):
    country: str
    open: int
    addressed: int


class EuNeed(BaseModel):
    """Needs of a kind (with `facet` and `term`: tagged with that term) across the nodes."""

    kind: str
    facet: str | None
    term: str | None
    open: int
    addressed: int
    countries: list[CountryCount]


class EuNeeds(BaseModel):
    nodes: list[NodeNeeds]
    needs: list[EuNeed]


def combine(summaries: list[tuple[str, dict[str, Any]]], kinds: set[str]) -> list[EuNeed]:
    """Every node's counts added up by kind and term, each with its countries."""
    cells: dict[tuple[str, str | None, str | None], list[CountryCount]] = {}
    for country, body in summaries:
        for count in body.get("counts", []):
            if kinds and count["kind"] not in kinds:
                continue
            key = (count["kind"], count.get("facet"), count.get("term"))
            cells.setdefault(key, []).append(
                CountryCount(country=country, open=count["open"], addressed=count["addressed"])
            )
    return [
        EuNeed(
            kind=kind,
            facet=facet,
            term=term,
            open=sum(c.open for c in countries),
            addressed=sum(c.addressed for c in countries),
            countries=countries,
        )
        for (kind, facet, term), countries in sorted(
            cells.items(), key=lambda item: (item[0][0], item[0][1] or "", item[0][2] or "")
        )
    ]


@router.get("/hub/needs", response_model=EuNeeds, responses=responses())
async def eu_needs(
    session: SessionDep,
    kind: Annotated[list[Annotated[str, Field(max_length=60)]], Query()] = [],  # noqa: B006
) -> EuNeeds:
    """The needs every node shares, as counts by kind and by kind and term (target group,
    setting, area, intervention type), with each country's part (anyone: the summaries are of
    scope `public`). No text and no organisation ever reaches the hub."""
    records = await needs_summaries(session)
    held = [(r, r.body or {}) for r in records]
    return EuNeeds(
        nodes=[
            NodeNeeds(
                country=r.origin,
                version=r.version,
                received_at=r.received_at,
                min_organisations=body.get("min_organisations", 0),
            )
            for r, body in held
        ],
        needs=combine([(r.origin, body) for r, body in held], set(kind)),
    )
