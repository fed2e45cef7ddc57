"""Needs heard, across the federation: a real Greek node records needs and a real hub pulls
its signed feed on its own. The hub shows the node's needs as counts by kind and term, each
made of needs of at least three organisations; a change on the node (a need addressed) reaches
it as a new version of the one summary record; and neither a need's text, nor an
organisation, nor who recorded it is anywhere in the hub's database or the node's feed."""

import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import create_engine, text

from federation.projection import SharedNeedsSummary
from node.core.settings import sync_url
from tests import factories
from tests.conftest import Database, free_port
from tests.federation.conftest import enrol, member, ready, serve_node, stop, wait_for

SECRET = "Stavroula Mavrogeni needs the RRAP toolset"  # a need's text: it never travels
EDITOR_EMAIL = "needs.editor@epanodos.example.gr"
ORGANISATIONS = ("Korydallos Prison", "EPANODOS", "ARSIS Thessaloniki", "Onisimos")


@pytest.fixture(scope="module")
def federation(
    database: Database, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """GR and the hub, served; the hub enrols GR and pulls it every second."""
    tmp = tmp_path_factory.mktemp("needs")
    ports = {name: free_port() for name in ("gr", "hub")}
    url = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    db = {name: database.fresh_copy() for name in ports}
    data = {name: tmp / name for name in ports}
    env = {
        "gr": {"INTEGRA_COUNTRY": "GR"},
        "hub": {
            "INTEGRA_COUNTRY": "EU",
            "INTEGRA_ROLE": "hub",
            "INTEGRA_HUB_SYNC_INTERVAL": "PT1S",
        },
    }
    made = {
        n: member(db[n], data[n], env[n]["INTEGRA_COUNTRY"], n if n == "hub" else "node")
        for n in ports
    }
    enrol(db["hub"], "GR", url["gr"], made["gr"][0], "node")
    processes: list[subprocess.Popen[bytes]] = []
    try:
        # GR ready before the hub, which pulls it: a first pull that fails waits out a backoff.
        for name in ports:
            full = env[name] | {"DATABASE_URL": db[name], "INTEGRA_DATA_DIR": str(data[name])}
            processes.append(serve_node(name, tmp, ports[name], full))
            wait_for(f"{name} to be ready", lambda name=name: ready(url[name]), 240)
        yield {"url": url, "db": db, "admin": made["gr"][1]}
    finally:
        stop(processes)


def hub_needs(hub: str) -> dict[str, Any]:
    response = httpx.get(f"{hub}/api/v1/hub/needs", timeout=10)
    assert response.status_code == 200, response.text
    return dict(response.json())


def count(
    summary: dict[str, Any], kind: str, facet: str | None = None, term: str | None = None
) -> Any:
    for need in summary["needs"]:
        if (need["kind"], need["facet"], need["term"]) == (kind, facet, term):
            return need["open"], need["addressed"], [c["country"] for c in need["countries"]]
    return None


@pytest.fixture(scope="module")
def recorded(federation: dict[str, Any]) -> dict[str, Any]:
    """On GR: training needs of three organisations (one recorded by an editor, naming a
    person), a tools need of one organisation only, a guidance need kept national."""
    node, admin = federation["url"]["gr"], federation["admin"]
    with httpx.Client(base_url=f"{node}/api/v1", headers=admin, timeout=30) as client:
        orgs = []
        for name in ORGANISATIONS:
            made = client.post("/organisations", json=factories.organisation(name=name))
            assert made.status_code == 201, made.text
            orgs.append(made.json()["id"])

        def need(org: str, kind: str, **extra: Any) -> dict[str, Any]:
            body = {
                "organisation_id": org,
                "kind": kind,
                "target_groups": ["juveniles_young_adults"],
                "settings": ["prison"],
                "description": f"{SECRET}; write to {EDITOR_EMAIL}.",
            } | extra
            made = client.post("/needs", json=body)
            assert made.status_code == 201, made.text
            return dict(made.json())

        first = need(orgs[0], "training", areas=["deradicalisation"])
        need(orgs[1], "training")
        need(orgs[2], "training", target_groups=["women"])
        need(orgs[3], "tools")  # one organisation's: too few to travel
        need(orgs[0], "guidance", shared=False)
        need(orgs[1], "guidance", shared=False)
        need(orgs[2], "guidance", shared=False)
    return {"first": first["id"]}


def test_the_hub_shows_counts_of_enough_organisations_and_follows_changes(
    federation: dict[str, Any], recorded: dict[str, Any]
) -> None:
    hub, node = federation["url"]["hub"], federation["url"]["gr"]
    summary = wait_for(
        "the counts at the hub",
        lambda: (s := hub_needs(hub)) and count(s, "training") == (3, 0, ["GR"]) and s,
        60,
    )
    assert [n["country"] for n in summary["nodes"]] == ["GR"]
    assert summary["nodes"][0]["min_organisations"] == 3
    assert count(summary, "training", "setting", "prison") == (3, 0, ["GR"])
    # Two organisations' juveniles, one's women, one's area: each too few to travel.
    assert count(summary, "training", "target_group", "juveniles_young_adults") is None
    assert count(summary, "training", "target_group", "women") is None
    assert count(summary, "training", "area", "deradicalisation") is None
    assert count(summary, "tools") is None  # one organisation's need
    assert count(summary, "guidance") is None  # kept national by whoever recorded it
    version = summary["nodes"][0]["version"]
    # Addressed on the node: a new version of the one summary record reaches the hub.
    done = httpx.patch(
        f"{node}/api/v1/needs/{recorded['first']}",
        json={"status": "addressed", "status_note": "ENAP course"},
        headers=federation["admin"],
    )
    assert done.status_code == 200, done.text
    summary = wait_for(
        "the change at the hub",
        lambda: (s := hub_needs(hub)) and count(s, "training") == (2, 1, ["GR"]) and s,
        60,
    )
    assert summary["nodes"][0]["version"] > version
    assert count(summary, "training", "setting", "prison") == (2, 1, ["GR"])
    # Filtered by kind; and the EU pool's search does not list a summary as a record.
    assert (
        hub_needs(hub)["needs"]
        and not httpx.get(f"{hub}/api/v1/hub/needs", params={"kind": "tools"}).json()["needs"]
    )
    found = httpx.get(f"{hub}/api/v1/eu/search", params={"q": "training"}).json()
    assert found["total"] == 0


def test_no_text_organisation_or_recorder_reaches_the_feed_or_the_hub(
    federation: dict[str, Any], recorded: dict[str, Any]
) -> None:
    hub, node = federation["url"]["hub"], federation["url"]["gr"]
    wait_for("the counts at the hub", lambda: count(hub_needs(hub), "training"), 60)
    feed = httpx.get(f"{node}/federation/v1/feed", params={"after": 0, "limit": 500}).text
    assert "needs_summary" in feed  # the check below looks where the summary is
    dump = table_dumps(federation["db"]["hub"])
    assert "needs_summary" in dump
    for secret in ("Mavrogeni", "Stavroula", "RRAP", EDITOR_EMAIL, "needs.editor", *ORGANISATIONS):
        assert secret.lower() not in feed.lower(), f"{secret} in the node's feed"
        assert secret.lower() not in dump.lower(), f"{secret} in the hub's database"


def table_dumps(db: str) -> str:
    """Every table of the database (its catalogue enumerated, none picked by hand) as text."""
    engine = create_engine(sync_url(db))
    out = []
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            names = list(conn.scalars(text("SELECT name FROM sqlite_master WHERE type = 'table'")))
            for name in names:
                out += [str(tuple(row)) for row in conn.execute(text(f'SELECT * FROM "{name}"'))]
        else:
            names = list(
                conn.scalars(
                    text(
                        "SELECT format('%I.%I', table_schema, table_name)"
                        " FROM information_schema.tables"
                        " WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
                        " AND table_type = 'BASE TABLE'"
                    )
                )
            )
            for name in names:
                out += list(conn.scalars(text(f"SELECT t::text FROM {name} t")))
    engine.dispose()
    return "\n".join(out)


# --- what the hub accepts as a needs summary --------------------------------------------------


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"counts": [{"kind": "training", "open": 1, "addressed": 0, "text": "x"}]}, "extra"),
        ({"description": "Staff need training"}, "extra"),
        ({"counts": [{"kind": "money", "open": 1, "addressed": 0}]}, "need kind"),
        (
            {
                "counts": [
                    {
                        "kind": "training",
                        "facet": "setting",
                        "term": "women",
                        "open": 1,
                        "addressed": 0,
                    }
                ]
            },
            "setting term",
        ),
        (
            {"counts": [{"kind": "training", "facet": "setting", "open": 1, "addressed": 0}]},
            "together",
        ),
        ({"counts": [{"kind": "training", "open": -1, "addressed": 0}]}, "greater"),
    ],
)
def test_the_federation_schema_refuses_anything_but_counts(body: dict[str, Any], why: str) -> None:
    with pytest.raises(ValidationError) as refused:
        SharedNeedsSummary.model_validate({"min_organisations": 3} | body)
    assert why in str(refused.value)


def test_a_later_version_s_terms_travel_as_x_terms() -> None:
    count = {"kind": "x-mentoring", "facet": "area", "term": "x-sport", "open": 4, "addressed": 1}
    summary = SharedNeedsSummary.model_validate({"min_organisations": 3, "counts": [count]})
    assert summary.counts[0].term == "x-sport"
