"""At the hub, the EU search finds pooled study-visit reports with the record-type facet, by
the same rule as pooled practices: a `public` report for anyone, a `network` one for signed-in
readers only. One federation per database backend, as real processes: a Portuguese node and
the EU hub that enrols it (PT trusts the hub to read its `network` entries)."""

import re
import subprocess
import uuid
from collections.abc import Iterator
from functools import partial
from typing import Any

import httpx
import pytest

from federation import keys
from tests.conftest import Database, free_port
from tests.federation.test_scope import (
    FAST,
    HUB_ENV,
    cli,
    enrol,
    member,
    published,
    ready,
    serve,
    visit,
    wait_for,
)


@pytest.fixture(scope="module")
def federation(
    database: Database, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("visit_search")
    ports = {name: free_port() for name in ("pt", "hub")}
    url = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    db = {name: database.fresh_copy() for name in ports}
    data = {name: tmp / name for name in ports}
    env = {"pt": {"INTEGRA_COUNTRY": "PT"}, "hub": HUB_ENV | FAST}
    made = {
        n: member(db[n], data[n], env[n]["INTEGRA_COUNTRY"], env[n].get("INTEGRA_ROLE", "node"))
        for n in ports
    }
    enrol(db["hub"], "PT", url["pt"], made["pt"][0], "node")
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for name in ports:
            full = env[name] | {"DATABASE_URL": db[name], "INTEGRA_DATA_DIR": str(data[name])}
            processes.append(serve(name, tmp, ports[name], full))
        for name in ports:
            wait_for(f"{name} to be ready", partial(ready, url[name]), 240)
        fingerprint = keys.fingerprint(keys.key_id_of(keys.unb64(made["hub"][0])))
        cli(db["pt"], data["pt"], "hub", "trust", url["hub"], "--fingerprint", fingerprint,
            env=env["pt"])  # fmt: skip
        yield {"url": url, "admin": {n: headers for n, (_, headers) in made.items()}}
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def eu_page(hub: str, cookies: dict[str, str] | None = None, **params: str) -> str:
    page = httpx.get(f"{hub}/", params=params, cookies=cookies or {})
    assert page.status_code == 200, page.text
    return page.text


def type_counts(html: str) -> dict[str, int]:
    found = re.findall(
        r'name="type" value="(\w+)"[^>]*>\s*<label[^>]*>[^<]*<span class="count">\((\d+)\)', html
    )
    return {value: int(count) for value, count in found}


def test_the_eu_search_finds_pooled_reports_with_the_record_type_facet(
    federation: dict[str, Any],
) -> None:
    url, admin = federation["url"], federation["admin"]
    word = f"Matosinhos{uuid.uuid4().hex[:6]}"
    findings = f"Os reclusos de {word} participam em programas de desvinculação."
    public = published(
        federation,
        "study-visits",
        visit(f"Visita de estudo {word}", language="pt", scope="public", findings=findings),
        action="submit",
    )
    network = published(
        federation,
        "study-visits",
        visit(f"Visita reservada {word}", language="pt", findings=findings),
        action="submit",
    )
    public_link = f'href="/eu/records/PT:{public.json()["id"]}"'
    network_link = f'href="/eu/records/PT:{network.json()["id"]}"'
    token = admin["hub"]["Authorization"].removeprefix("Bearer ")
    signed_in = {"integra_session": token}

    # a word form of the findings ("recluso" for "reclusos"), with the word that makes it ours
    def both_found() -> str | None:
        page = eu_page(url["hub"], signed_in, q=f"recluso {word}")
        return page if network_link in page and public_link in page else None

    both = wait_for("both reports in the hub's index", both_found)
    assert type_counts(both) == {"practice": 0, "study_visit": 2}
    assert "Study-visit report" in both

    anonymous = eu_page(url["hub"], q=f"recluso {word}", type="study_visit")
    assert public_link in anonymous and network_link not in anonymous
    assert type_counts(anonymous) == {"practice": 0, "study_visit": 1}
    assert re.search(r'value="study_visit" checked', anonymous)
    practices_only = eu_page(url["hub"], q=f"recluso {word}", type="practice")
    assert public_link not in practices_only and "0 practices found" in practices_only
