"""What an operator reads: Prometheus metrics summed over a server's workers, and JSON logs
that carry each request's id, into the jobs it queued."""

import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
import pytest
import structlog
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from node.app import create_app
from node.core import logs, outbox
from node.core.models import OutboxMessage
from node.core.settings import Settings, sync_url
from node.metrics import LATENCY_BUCKETS, observe_all
from tests.conftest import Database, free_port

METRICS_TOKEN = "scrape-me-" + "x" * 22


@dataclass
class Server:
    url: str
    database_url: str
    log: Path


@pytest.fixture(scope="module")
def server(database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`integra serve --workers 2`, its stderr read from a pipe (as journald or a container's
    log driver reads it: both workers write to it) into a file."""
    tmp = tmp_path_factory.mktemp("metrics")
    port, url = free_port(), ""
    database_url = database.fresh_copy()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INTEGRA_", "PROMETHEUS"))}
    env |= {
        "DATABASE_URL": database_url,
        "INTEGRA_DATA_DIR": str(tmp),
        "INTEGRA_METRICS_TOKEN": METRICS_TOKEN,
    }
    log = tmp / "serve.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "node", "serve", "--workers", "2", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert process.stderr is not None
    log.touch()
    drained = threading.Thread(target=_drain, args=(process.stderr, log), daemon=True)
    drained.start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while len(_events(log, "server_process_started")) < 2:
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail(f"the server did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield Server(url, database_url, log)
    finally:
        process.terminate()
        process.wait(timeout=30)
        drained.join(timeout=30)
        process.stderr.close()


def _drain(pipe: IO[bytes], log: Path) -> None:
    """Copy what comes down the pipe to the file as it comes."""
    with log.open("ab") as out:
        while chunk := os.read(pipe.fileno(), 65536):
            out.write(chunk)
            out.flush()


def _lines(log: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


def _events(log: Path, event: str) -> list[dict[str, object]]:
    return [line for line in _lines(log) if line.get("event") == event]


def _sample(metrics: str, name: str, **labels: str) -> float:
    """The value of one sample of the text format."""
    for line in metrics.splitlines():
        if line.startswith(name + ("{" if labels else " ")):
            found = dict(re.findall(r'(\w+)="([^"]*)"', line.rpartition("} ")[0]))
            if all(found.get(k) == v for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name} {labels} in:\n{metrics[:3000]}")


def test_requests_are_counted_by_route_template_over_every_worker(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        before = client.get("/metrics").text
        searches = [client.get("/api/v1/practices/search", params={"q": f"p{n}"}) for n in range(6)]
        missing = client.get("/api/v1/practices/0b0e4b5c-5d2a-4d55-9f43-1c3c1d6c1111")
        probes = [client.get("/healthz") for _ in range(3)]
        after = client.get("/metrics")
    assert all(s.status_code == 200 for s in searches) and missing.status_code == 404
    assert after.status_code == 200 and after.headers["content-type"].startswith("text/plain")
    route = {"method": "GET", "route": "/api/v1/practices/search", "status": "200"}
    try:
        earlier = _sample(before, "integra_http_requests_total", **route)
    except AssertionError:
        earlier = 0
    # Six searches, whichever of the two workers answered each: the counts are summed.
    assert _sample(after.text, "integra_http_requests_total", **route) == earlier + 6
    # The liveness probe, answered before routing, is counted under its route too.
    assert all(p.status_code == 200 for p in probes)
    probe = {"method": "GET", "route": "/healthz", "status": "200"}
    assert _sample(after.text, "integra_http_requests_total", **probe) >= 3
    one = {"route": "/api/v1/practices/{practice_id}", "status": "404"}
    assert _sample(after.text, "integra_http_requests_total", **one) >= 1
    search = {"route": "/api/v1/practices/search"}
    assert _sample(after.text, "integra_search_duration_seconds_count", **search) >= 6
    assert (
        _sample(
            after.text,
            "integra_http_request_duration_seconds_bucket",
            route="/api/v1/practices/search",
            le="+Inf",
        )
        >= 6
    )
    for gauge in ("integra_outbox_waiting", "integra_outbox_failed", "integra_held_records"):
        assert _sample(after.text, gauge) == 0
    assert _sample(after.text, "integra_feed_size") == 0


def test_answers_given_together_are_each_counted_before_a_scrape(server: Server) -> None:
    # Many at a time: each worker counts a turn's answers together (`HeldCounts`).
    route = {"method": "GET", "route": "/api/v1/practices/{practice_id}", "status": "404"}
    latency = {"method": "GET", "route": "/api/v1/practices/{practice_id}"}
    with (
        httpx.Client(base_url=server.url, limits=httpx.Limits(max_connections=32)) as client,
        ThreadPoolExecutor(32) as pool,
    ):
        before = client.get("/metrics").text
        try:
            earlier = _sample(before, "integra_http_requests_total", **route)
        except AssertionError:
            earlier = 0
        answers = list(
            pool.map(lambda _: client.get(f"/api/v1/practices/{uuid.uuid4()}"), range(400))
        )
        after = client.get("/metrics").text
    assert {answer.status_code for answer in answers} == {404}
    assert _sample(after, "integra_http_requests_total", **route) == earlier + 400
    # The histogram agrees: every answer in a bucket, the buckets cumulated, a sum of times.
    count = _sample(after, "integra_http_request_duration_seconds_count", **latency)
    every = _sample(after, "integra_http_request_duration_seconds_bucket", **latency, le="+Inf")
    assert count == every == earlier + 400
    bounds = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0"]
    cumulated = [
        _sample(after, "integra_http_request_duration_seconds_bucket", **latency, le=le)
        for le in bounds
    ]
    assert cumulated == sorted(cumulated) and cumulated[-1] <= every
    assert 0 < _sample(after, "integra_http_request_duration_seconds_sum", **latency) < 400


@pytest.mark.parametrize("together", [2, 7, 50])
def test_observations_counted_together_read_as_counted_one_by_one(together: int) -> None:
    values = [0.0, 0.005, 0.0051, 0.01, 0.3, 2.5, 10.0, 11.0, 1e-9] * together
    apart, joined = CollectorRegistry(), CollectorRegistry()
    one = Histogram("t", "t", ["r"], buckets=LATENCY_BUCKETS, registry=apart).labels("x")
    for value in values:
        one.observe(value)
    observe_all(
        Histogram("t", "t", ["r"], buckets=LATENCY_BUCKETS, registry=joined).labels("x"), values
    )

    def samples(registry: CollectorRegistry) -> list[str]:
        text = generate_latest(registry).decode()
        return [line for line in text.splitlines() if "_created" not in line]

    assert samples(apart) == samples(joined)
    assert 't_count{r="x"} ' + f"{9.0 * together}" in samples(joined)


def test_metrics_are_for_loopback_or_the_token(server: Server) -> None:
    # Through a proxy (uvicorn trusts loopback's X-Forwarded-For) the client is not loopback.
    remote = {"X-Forwarded-For": "203.0.113.9"}
    refused = httpx.get(f"{server.url}/metrics", headers=remote)
    assert refused.status_code == 403 and "INTEGRA_METRICS_TOKEN" in refused.json()["detail"]
    wrong = httpx.get(f"{server.url}/metrics", headers=remote | {"Authorization": "Bearer no"})
    assert wrong.status_code == 403
    scraped = httpx.get(
        f"{server.url}/metrics", headers=remote | {"Authorization": f"Bearer {METRICS_TOKEN}"}
    )
    assert scraped.status_code == 200 and "integra_feed_size" in scraped.text


def test_logs_are_json_lines_with_the_request_id_and_route(server: Server) -> None:
    answer = httpx.get(
        f"{server.url}/api/v1/practices/search", headers={"X-Request-ID": "probe-4711"}
    )
    assert answer.headers["x-request-id"] == "probe-4711"
    deadline = time.monotonic() + 10
    while not [e for e in _events(server.log, "request") if e.get("request_id") == "probe-4711"]:
        assert time.monotonic() < deadline, server.log.read_text()[-2000:]
        time.sleep(0.1)
    [access] = [e for e in _events(server.log, "request") if e.get("request_id") == "probe-4711"]
    assert access["route"] == "/api/v1/practices/search" and access["status"] == 200
    assert access["method"] == "GET" and isinstance(access["ms"], float)
    assert {"timestamp", "level"} <= access.keys()
    # Every line the server wrote is JSON (uvicorn's own messages too), and the placeholder
    # secret is said.
    lines = server.log.read_text().splitlines()
    assert lines and all(line.startswith("{") for line in lines), lines[:5]
    assert _events(server.log, "placeholder_secret")


def test_two_busy_workers_write_whole_lines_each_request_once(server: Server) -> None:
    # Long paths, answered at once (404), many at a time: each worker joins a turn's lines into
    # writes, and both write to the one pipe.
    ids = [f"whole-{n:04d}" for n in range(300)]
    limits = httpx.Limits(max_connections=32)
    with (
        httpx.Client(base_url=server.url, limits=limits, timeout=30) as client,
        ThreadPoolExecutor(32) as pool,
    ):
        answers = list(
            pool.map(
                lambda one: client.get(
                    f"/api/v1/nothing-here/{'é' * 400}", headers={"X-Request-ID": one}
                ),
                ids,
            )
        )
    assert {answer.status_code for answer in answers} == {404}
    deadline = time.monotonic() + 10
    while True:
        # Every line parses (`_lines` reads each as JSON), and each request is there once.
        logged = [e["request_id"] for e in _events(server.log, "request")]
        found = sorted(one for one in logged if str(one).startswith("whole-"))
        if found == ids or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert found == ids


def test_a_job_logs_with_the_id_of_the_request_that_queued_it(
    database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    url = database.fresh_copy()
    engine = create_engine(sync_url(url))
    logs.configure("info")
    structlog.contextvars.bind_contextvars(request_id="req-from-a-client")
    try:
        outbox.HANDLERS.setdefault("test.metrics.fails", []).append(_fails)
        with Session(engine) as session:
            # A job queued by request req-7 fails, and says so as that request.
            session.add(
                OutboxMessage(topic="test.metrics.fails", entity_id="x", request_id="req-7")
            )
            session.commit()
            outbox.process_pending(session, outbox.JobContext(search=None))
            session.commit()
    finally:
        outbox.HANDLERS.pop("test.metrics.fails", None)
        engine.dispose()
    failed = [
        json.loads(line)
        for line in capsys.readouterr().err.splitlines()
        if '"outbox_failed"' in line
    ]
    assert failed and failed[0]["request_id"] == "req-7"
    # The caller's own id is back once the jobs are done.
    assert structlog.contextvars.get_contextvars()["request_id"] == "req-from-a-client"
    structlog.contextvars.unbind_contextvars("request_id")


def _fails(session: Session, entity_id: str, context: outbox.JobContext) -> None:
    raise RuntimeError("this job always fails")


def test_an_unreachable_database_is_one_line_and_a_503(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    closed = f"postgresql://integra@127.0.0.1:{free_port()}/nowhere"
    app = create_app(Settings(database_url=closed, data_dir=tmp_path))
    transport = httpx.ASGITransport(app=app)

    async def ask() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=transport, base_url="http://node.test") as c:
            return [await c.get("/api/v1/practices/search") for _ in range(2)]

    import anyio

    capsys.readouterr()
    answers = anyio.run(ask)
    assert [a.status_code for a in answers] == [503, 503]
    assert answers[0].json()["detail"].startswith("database unreachable")
    assert answers[0].headers["retry-after"]
    err = capsys.readouterr().err
    said = [json.loads(line) for line in err.splitlines() if "service_unavailable" in line]
    assert len(said) == 2 and "Traceback" not in err
    assert said[0]["cause"].startswith("database: OperationalError")
