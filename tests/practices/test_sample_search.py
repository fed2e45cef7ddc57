"""The sample practice database, searched as practitioners in five languages would."""

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from node.core import outbox
from node.core.auth import system_principal
from practices import transfer as practice_transfer
from practices.models import Practice
from registry import transfer
from tests.practices.facet_counts import (
    expected_facets,
    expected_total,
    facet_counts,
    filed_under,
)

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).parents[2]


@pytest.fixture
async def sample(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> dict[str, str]:
    """The sample registry and practices, indexed; returns practice ids by ref."""
    by = system_principal("test")
    async with sessions() as session:
        rows = transfer.read_rows(
            (ROOT / "registry/sample_data/registry.json").read_bytes(), "json"
        )
        await transfer.import_rows(session, rows, by=by)
        rows = practice_transfer.read_practice_rows(
            (ROOT / "practices/sample_data/practices.json").read_bytes(), "json"
        )
        report = await practice_transfer.import_practices(session, rows, by=by)
        assert not report.errors
        await session.commit()
        await session.run_sync(outbox.drain, client._transport.app.state.jobs)  # type: ignore[attr-defined]
        await session.commit()
        refs = (await session.execute(select(Practice.ref, Practice.id))).all()
    return {ref: str(practice_id) for ref, practice_id in refs}


async def found(client: httpx.AsyncClient, q: str, **params: Any) -> set[str]:
    response = await client.get("/api/v1/practices/search", params={"q": q, "limit": 100, **params})
    assert response.status_code == 200, response.text
    return {item["id"] for item in response.json()["items"]}


LANGUAGE_CASES = [
    ("fr-pairs", ["réaffiliation", "REAFFILIATION", "reaffiliation sociale", "Réaffil"]),
    ("fr-cnapr", ["prévention de la radicalisation", "PREVENTION radicalization", "cnapr"]),
    (
        "pt-avaliacao-inicial-plano-reinsercao",
        ["reinserção do recluso", "REINSERCAO recluso", "Avaliação inicial", "avaliacao"],
    ),
    ("pt-cpj-formacao-efa-fmc", ["formação profissional", "FORMACAO", "formaç"]),
    ("bg-anger-management", ["управление на гнева", "УПРАВЛЕНИЕ ГНЕВА", "гнев"]),
    ("bg-fostering-tolerance-sofia", ["толерантността", "ТОЛЕРАНТНОСТТА", "пробационната"]),
    (
        "gr-onisimos-faith-dialogue",
        [
            "Θρησκευτικός διάλογος",
            "θρησκευτικος διαλογος",
            "ΘΡΗΣΚΕΥΤΙΚΟΣ",
            "Ονήσιμος",
            "ονησιμοσ",
        ],
    ),
    ("gr-arsis-support-office", ["Αποφυλακισμένων", "αποφυλακισμενων", "ΑΡΣΙΣ", "αρσις"]),
]


async def test_each_language_is_found_whatever_the_accents_and_capitals(
    client: httpx.AsyncClient, sample: dict[str, str]
) -> None:
    for ref, queries in LANGUAGE_CASES:
        for query in queries:
            assert sample[ref] in await found(client, query), (ref, query)


async def test_british_and_american_spellings_find_the_same_english_records(
    client: httpx.AsyncClient, sample: dict[str, str]
) -> None:
    british = await found(client, "radicalisation", language="en")
    american = await found(client, "radicalization", language="en")
    assert british == american and len(british) >= 10
    assert await found(client, "deradicalization") == await found(client, "de-radicalisation")


FILTER_CASES: list[dict[str, list[str]]] = [
    {},
    {"country": ["GR"]},
    {"country": ["FR", "PT"], "kind": ["policy"]},
    {"setting": ["prison"], "target_group": ["adults"]},
    {"language": ["el", "bg"], "intervention_type": ["social_work", "education"]},
    {"evaluation_type": ["none"], "licence": ["CC-BY-4.0"], "process_focus": ["prevention"]},
]


async def test_sample_facet_counts_equal_counts_of_the_sample_records(
    client: httpx.AsyncClient, sample: dict[str, str]
) -> None:
    records = json.loads((ROOT / "practices/sample_data/practices.json").read_text())["practices"]
    published = [filed_under(r) for r in records if r["status"] == "published"]
    for filters in FILTER_CASES:
        response = await client.get("/api/v1/practices/search", params=filters)
        body = response.json()
        assert body["total"] == expected_total(published, filters), filters
        assert body["total"] > 0, filters  # a filter that finds nothing would prove little
        assert facet_counts(body) == expected_facets(published, filters), filters


async def test_only_published_sample_records_are_searchable(
    client: httpx.AsyncClient, sample: dict[str, str]
) -> None:
    data = json.loads((ROOT / "practices/sample_data/practices.json").read_text())["practices"]
    response = (await client.get("/api/v1/practices/search", params={"limit": 1})).json()
    assert response["total"] == sum(p["status"] == "published" for p in data)
