"""`integra serve --workers 2`: connections that arrive together are answered by both workers.

With one listening socket shared by the workers, the worker that woke first accepted a whole
burst of connections (a proxy's keep-alive pool, a load generator, a room of readers arriving
at once) and the other one idled: two workers answered no faster than one.
"""

import json
import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc to see who holds what")

CONNECTIONS = 24


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, list[int], Path]]:
    tmp_path = tmp_path_factory.mktemp("serve")
    port = free_port()
    log = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INTEGRA_", "DATABASE_URL"))}
    env |= {"INTEGRA_DATA_DIR": str(tmp_path / "data")}
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "node", "serve", "--workers", "2", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 90
        while len(workers := _started(log)) < 2 or not _healthy(port):
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail(f"two workers did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield port, workers, log
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_connections_arriving_together_are_shared_by_the_workers(
    two_workers: tuple[int, list[int], Path],
) -> None:
    port, workers, _ = two_workers
    for _ in range(3):  # each burst, not only one by luck
        burst = _connect_at_once(port, CONNECTIONS)
        try:
            for conn in burst:
                conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            for conn in burst:  # each one answered, and still open (keep-alive)
                assert conn.recv(4096).startswith(b"HTTP/1.1 200")
            held = {pid: _connections_held(pid, port) for pid in workers}
            assert sum(held.values()) == CONNECTIONS
            assert all(held.values()), f"one worker holds every connection: {held}"
        finally:
            for conn in burst:
                conn.close()


def test_a_second_server_on_the_same_port_is_refused(
    two_workers: tuple[int, list[int], Path], tmp_path: Path
) -> None:
    """The workers' sockets let each other share the port; another server is still told it is
    taken, before it changes anything."""
    port, _, _ = two_workers
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INTEGRA_", "DATABASE_URL"))}
    env |= {"INTEGRA_DATA_DIR": str(tmp_path / "other")}
    second = subprocess.run(
        [sys.executable, "-m", "node", "serve", "--workers", "2", "--port", str(port)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in second.stderr + second.stdout
    assert not (tmp_path / "other" / "node.db").exists()


def _connect_at_once(port: int, count: int) -> list[socket.socket]:
    """``count`` connections asked for together, as a load generator or a proxy opens its pool:
    none waits for the one before it to be set up."""
    burst = []
    for _ in range(count):
        conn = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        conn.setblocking(False)
        conn.connect_ex(("127.0.0.1", port))
        burst.append(conn)
    for conn in burst:
        select.select([], [conn], [], 30)
        conn.setblocking(True)
    return burst


def _started(log: Path) -> list[int]:
    pids = []
    for line in log.read_text().splitlines():
        if line.startswith("{") and '"server_process_started"' in line:
            pids.append(json.loads(line)["pid"])
    return pids


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _connections_held(pid: int, port: int) -> int:
    """How many established connections to ``port`` the process ``pid`` holds."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    held = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "01" and fields[9] in inodes:
                held += 1
    return held
