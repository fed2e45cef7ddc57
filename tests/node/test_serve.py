"""The README's first command, for real: `integra serve --sample-data` in its own process."""

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Database, free_port


@pytest.fixture
def node_url(database: Database, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("INTEGRA_") or k == "INTEGRA_ACCESS_LOG"
    }
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
        deadline = time.monotonic() + 120  # a loaded CI machine starts it slowly
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)  # not ready (a 503 too): asked again, without hammering it
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

    # Greek capitals without accents find the Greek records first; the concept (reintegration)
    # brings other countries' records after them.
    search = httpx.get(f"{node_url}/api/v1/practices/search", params={"q": "ΕΠΑΝΕΝΤΑΞΗ"}).json()
    assert search["total"] >= 1 and search["items"][0]["country"] == "GR"
    assert "GR" in {f["value"] for f in search["facets"]["country"]}
    everything = httpx.get(f"{node_url}/api/v1/practices/search", params={"limit": 1}).json()
    assert everything["total"] >= 55
    assert {f["value"] for f in everything["facets"]["language"]} >= {"en", "fr", "pt", "bg", "el"}
    assert httpx.get(f"{node_url}/api/v1/study-visits").status_code == 401

    health = httpx.get(f"{node_url}/healthz")
    assert health.json() == {"status": "ok"}
    docs = httpx.get(f"{node_url}/openapi.json").json()
    assert "/api/v1/organisations" in docs["paths"]


def _data_segments_in(sock: socket.socket) -> int:
    """TCP segments with data this socket has received (Linux's tcp_info, tcpi_data_segs_in)."""
    return int(
        struct.unpack_from("I", sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 232), 152)[0]
    )


def _answers(url: str, paths: list[str]) -> tuple[list[bytes], int]:
    """Each path's body, asked in turn on one kept-alive connection, and the TCP segments with
    data that brought them."""
    host, port = url.removeprefix("http://").split(":")
    bodies = []
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        before = _data_segments_in(sock)
        for path in paths:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            received = b""
            while b"\r\n\r\n" not in received:
                received += sock.recv(65536)
            head, _, body = received.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 "), head
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            while len(body) < length:
                body += sock.recv(65536)
            bodies.append(body)
        return bodies, _data_segments_in(sock) - before


@pytest.mark.skipif(sys.platform != "linux", reason="counts segments with Linux's tcp_info")
def test_an_answer_leaves_in_one_segment_head_and_body_together(node_url: str) -> None:
    """The client is woken once per answer, not for a head and then for its body: fewer
    packets on the network, fewer system calls on both sides."""
    small = [
        "/healthz",
        "/api/v1/practices/search?q=prison&limit=3",
        "/api/v1/organisations?limit=2",
    ]
    bodies, segments = _answers(node_url, small * 3)
    assert segments == len(small) * 3
    assert json.loads(bodies[0]) == {"status": "ok"}
    # A large answer is not held whole: it leaves as the transport sends it, and arrives intact.
    [everything], _ = _answers(node_url, ["/api/v1/organisations?limit=100"])
    assert everything == httpx.get(f"{node_url}/api/v1/organisations?limit=100").content
    assert len(json.loads(everything)["items"]) >= 50


def _events(log: Path, event: str) -> list[int]:
    """The pids of the processes that logged this event, in order."""
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return [int(line["pid"]) for line in lines if line.get("event") == event]


def _wait_for(condition: Callable[[], bool], what: str, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}, within {timeout} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


def test_several_workers_answer_and_background_work_runs_in_one_of_them(
    database: Database, tmp_path: Path
) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("INTEGRA_") or k == "INTEGRA_ACCESS_LOG"
    }
    env |= {"DATABASE_URL": database.fresh_copy(), "INTEGRA_DATA_DIR": str(tmp_path)}
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "node", "serve", "--workers", "2", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        started = lambda: set(_events(log, "server_process_started"))  # noqa: E731
        _wait_for(lambda: len(started()) == 2, "two worker processes did not start", log)
        workers = started()
        assert process.pid not in workers
        _wait_for(lambda: bool(_events(log, "background_started")), "no background work", log)
        # The outbox sweep and the peers' rounds: one worker, not each of them.
        [first] = _events(log, "background_started")
        assert first in workers
        answer = httpx.get(f"{url}/api/v1/practices/search", params={"q": "prison"}, timeout=30)
        assert answer.status_code == 200 and answer.json()["total"] == 0
        if sys.platform == "linux":  # each worker sends an answer's head and body together
            assert _answers(url, ["/healthz"] * 4)[1] == 4

        # That worker dies: the other one answers, the server replaces the dead one, and one
        # of the two (the survivor or the replacement) takes the background work over.
        os.kill(first, signal.SIGKILL)
        # Connections that reached the dying worker's socket are reset with it: ask once it
        # is gone.
        _wait_for(lambda: not _alive(first), "the killed worker did not die", log, 30)
        assert httpx.get(f"{url}/healthz", timeout=30).json() == {"status": "ok"}
        _wait_for(lambda: len(started()) == 3, "the dead worker was not replaced", log)
        _wait_for(
            lambda: len(_events(log, "background_started")) == 2,
            "no other worker took the background work over",
            log,
        )
        second = _events(log, "background_started")[1]
        assert second != first and second in started()
        assert httpx.get(f"{url}/healthz", timeout=30).status_code == 200
        assert _events(log, "background_started") == [first, second]
    finally:
        process.terminate()
        process.wait(timeout=30)
    # Stopping the server stops its workers.
    for pid in started():
        _wait_for(lambda pid=pid: not _alive(pid), f"worker {pid} outlived the server", log, 30)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is gone, only not reaped yet
        return stat.read().split(") ")[-1][:1] != "Z"
