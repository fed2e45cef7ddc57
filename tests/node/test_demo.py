"""`integra demo` for real: a hub and four nodes as processes on 127.0.0.1, then stopped."""

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from federation import keys
from federation.canonical import canonical
from node import sample
from tests.conftest import free_port

COUNTRIES = ("FR", "PT", "BG", "GR")
READY = "Ctrl-C stops all five"


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port_block(size: int = 5) -> int:
    """The first of `size` consecutive free ports (below the ephemeral range's usual start)."""
    for _ in range(200):
        base = free_port() % 20000 + 20000
        if all(port_is_free(base + i) for i in range(size)):
            return base
    raise RuntimeError(f"no block of {size} free ports found")


def demo_command(base_port: int, root: Path) -> list[str]:
    return [sys.executable, "-m", "node", "demo", "--base-port", str(base_port), "--dir", str(root)]


class Demo:
    """`python -m node demo` in its own process, its output collected as it comes."""

    def __init__(self, base_port: int, root: Path) -> None:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("INTEGRA_") or k == "INTEGRA_ACCESS_LOG"
        }
        # A developer's settings must not leak into the demo's members.
        env |= {"DATABASE_URL": "sqlite:////nonexistent/leak.db", "INTEGRA_COUNTRY": "ZZ"}
        env |= {"COLUMNS": "200"}
        self.process = subprocess.Popen(
            demo_command(base_port, root),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            if READY in line:
                self.ready.set()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_ready(self, timeout: float = 240) -> str:
        deadline = time.monotonic() + timeout
        while not self.ready.wait(0.5):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                pytest.fail(f"the demo did not get ready:\n{self.output}")
        return self.output

    def stop(self, how: signal.Signals = signal.SIGINT, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(how)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        finally:
            self.reader.join(timeout=10)
            assert self.process.stdout is not None
            self.process.stdout.close()


def test_demo_starts_a_hub_and_four_nodes_syncs_them_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    base = free_port_block()
    hub, nodes = f"http://127.0.0.1:{base}", {c: base + 1 + i for i, c in enumerate(COUNTRIES)}
    demo = Demo(base, tmp_path / "demo")
    try:
        shown = demo.wait_ready()
        password = re.search(rf"{re.escape(hub)}/docs\s+admin@example.org\s+(\S+)", shown)
        assert password is not None, shown
        assert (tmp_path / "demo/hub/sample-password").read_text().strip() == password.group(1)
        assert (tmp_path / "demo/hub/sample-password").stat().st_mode & 0o777 == 0o600

        pool = httpx.get(f"{hub}/api/v1/eu/search", params={"limit": 1}).json()
        assert {f["value"] for f in pool["facets"]["country"]} >= set(COUNTRIES)
        assert httpx.get(f"{hub}/api/v1/organisations").json()["items"] == []
        assert "no sample data" in (tmp_path / "demo/hub/serve.log").read_text()
        for country, port in nodes.items():
            listed = httpx.get(
                f"http://127.0.0.1:{port}/api/v1/organisations", params={"limit": 200}
            ).json()["items"]
            assert listed and {o["country"] for o in listed} == {country}
            # Each node mirrors the hub's EU pool: every country, searchable locally.
            mirrored = httpx.get(
                f"http://127.0.0.1:{port}/api/v1/eu/search", params={"limit": 1}
            ).json()
            assert mirrored["total"] == pool["total"], (country, mirrored["total"])
            assert {f["value"] for f in mirrored["facets"]["country"]} >= set(COUNTRIES)
        assert re.search(r"mirrors (\d+) of the EU pool", shown).group(1) == str(pool["total"])  # type: ignore[union-attr]

        hit = httpx.get(f"{hub}/api/v1/eu/search", params={"q": "reinsercao"}).json()["items"][0]
        record = httpx.get(f"{hub}/api/v1/eu/records/{hit['record_id']}").json()
        envelope = record["envelope"]
        assert envelope["payload"]["origin"] == hit["origin"] == "PT"
        node_keys = httpx.get(f"http://127.0.0.1:{nodes['PT']}/federation/v1/keys").json()
        [key] = [k for k in node_keys["keys"] if k["key_id"] == envelope["key"]]
        assert keys.verify(key["public_key"], canonical(envelope["payload"]), envelope["sig"])
        greek = re.search(rf":{nodes['GR']}/docs\s+admin@example.org\s+(\S+)", shown)
        assert greek is not None and greek.group(1) != password.group(1)
        for attempt, status in ((greek.group(1), 200), (password.group(1), 401)):
            login = httpx.post(
                f"http://127.0.0.1:{nodes['GR']}/api/v1/auth/token",
                json={"email": "admin@example.org", "password": attempt},
            )
            assert login.status_code == status, login.text
    finally:
        code = demo.stop(signal.SIGINT)
    assert code == 0, demo.output
    assert all(port_is_free(base + i) for i in range(5))

    again = Demo(base, tmp_path / "demo")
    try:
        shown = again.wait_ready()
        assert shown.count("signing key kept") == 5 and password.group(1) in shown
        assert shown.count("nothing new") == 4
        pid = int(re.search(r"node PT: starting on \S+ \(pid (\d+)", shown).group(1))  # type: ignore[union-attr]
        os.kill(pid, signal.SIGKILL)
        code = again.process.wait(timeout=30)
    finally:
        again.stop()
    assert (
        code != 0 and "node PT on port" in again.output and "stopped unexpectedly" in again.output
    )
    assert all(port_is_free(base + i) for i in range(5))


def test_a_taken_port_is_named_before_anything_starts(tmp_path: Path) -> None:
    base = free_port_block()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", base + 2))
        squatter.listen()
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("INTEGRA_") or k == "INTEGRA_ACCESS_LOG"
        }
        result = subprocess.run(
            demo_command(base, tmp_path / "demo"),
            env=env | {"COLUMNS": "200"},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode != 0
    assert f"port {base + 2}" in result.stderr and "taken" in result.stderr
    assert not (tmp_path / "demo").exists()


@pytest.mark.parametrize("country", COUNTRIES)
def test_a_node_gets_its_own_countrys_sample_and_every_ref_resolves(country: str) -> None:
    data = sample.load(country)
    organisations = data.registry["organisations"]
    refs = {o["ref"] for o in organisations}
    assert organisations and {o["country"] for o in organisations} == {country}
    assert all(o.get("parent_ref") in refs | {None} for o in organisations)
    assert data.registry["protocols"]
    for protocol in data.registry["protocols"]:
        assert {p["organisation_ref"] for p in protocol["parties"]} <= refs

    practices = data.practices["practices"]
    assert practices and {p["country"] for p in practices} == {country}
    practice_refs = {p["ref"] for p in practices}
    links = [link for p in practices for link in p["organisations"]]

    visits = data.study_visits["study_visits"]
    assert any(v["status"] == "published" for v in visits)
    for visit in visits:
        assert visit["organising_authority"]["ref"] in refs
        links += visit["host_organisations"] + [
            m["home_organisation"] for m in visit["delegation"] if m.get("home_organisation")
        ]
        assert set(visit["observed_practice_refs"]) <= practice_refs
    assert all(link.get("ref") in refs or link.get("name") for link in links)
    assert all("ref" not in link or link["ref"] in refs for link in links)


def test_a_foreign_host_is_kept_by_name() -> None:
    [lyon] = [v for v in sample.load("GR").study_visits["study_visits"] if "lyon" in v["ref"]]
    whole = sample.load()
    names = {o["ref"]: o["name"] for o in whole.registry["organisations"]}
    assert {h["name"] for h in lyon["host_organisations"]} >= {names["fr-spip"]}
    assert lyon["observed_practice_refs"] == []


def test_without_a_country_or_on_the_hub_the_whole_sample_loads() -> None:
    whole = sample.load()
    assert len(whole.practices["practices"]) == 65
    assert len(whole.study_visits["study_visits"]) == 10
    assert sample.load("EU") == whole
