"""The README's first command, for real: `integra serve --sample-data` in its own process."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Database, free_port


@pytest.fixture
def node_url(database: Database, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTEGRA_")}
    env |= {"DATABASE_URL": database.fresh_copy(), "INTEGRA_DATA_DIR": str(tmp_path)}
    process = subprocess.Popen(
        [sys.executable, "-m", "node", "serve", "--sample-data", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            process.kill()
            pytest.fail(f"node did not become ready:\n{process.communicate()[0]}")
        yield url
    finally:
        process.terminate()
        output = process.communicate(timeout=20)[0]
    assert f"ready at {url}" in output.replace("\n", "")


def test_a_fresh_node_serves_the_sample_registry_without_contact_data(node_url: str) -> None:
    greek = httpx.get(f"{node_url}/api/v1/organisations", params={"country": "GR", "limit": 100})
    assert greek.status_code == 200
    names = [o["name"] for o in greek.json()["items"]]
    assert any("EPANODOS" in n for n in names) and len(names) >= 10
    assert all(o["country"] == "GR" and o["is_sample"] for o in greek.json()["items"])

    with_contacts = next(o for o in greek.json()["items"] if o["ref"] == "gr-epanodos")
    embedded = httpx.get(
        f"{node_url}/api/v1/organisations/{with_contacts['id']}",
        params={"include": "contact_points"},
    )
    assert embedded.status_code == 401
    assert "example.org" not in greek.text and "example.org" not in embedded.text

    search = httpx.get(f"{node_url}/api/v1/practices/search", params={"q": "ΕΠΑΝΕΝΤΑΞΗ"}).json()
    assert search["total"] >= 1 and {f["value"] for f in search["facets"]["country"]} == {"GR"}
    everything = httpx.get(f"{node_url}/api/v1/practices/search", params={"limit": 1}).json()
    assert everything["total"] >= 55
    assert {f["value"] for f in everything["facets"]["language"]} >= {"en", "fr", "pt", "bg", "el"}
    assert httpx.get(f"{node_url}/api/v1/study-visits").status_code == 401

    health = httpx.get(f"{node_url}/healthz")
    assert health.json() == {"status": "ok"}
    docs = httpx.get(f"{node_url}/openapi.json").json()
    assert "/api/v1/organisations" in docs["paths"]
