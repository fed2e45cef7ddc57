"""The deployment in deploy/ exercised, not only written: the compose files are valid (Debian's
`docker-compose config`, no engine needed) and name every missing secret; every setting they
give is one the program reads; and the node's services (api, worker, beat) started from the
compose file as local processes, with its environment, make a working node on the local
PostgreSQL and Redis. No container is started."""

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import create_engine, text

from node.core.settings import Settings, env_names, sync_url
from tests import factories
from tests.conftest import REQUIRE_SERVICES, Database, free_port, run_cli
from tests.practices.test_worker import redis_up

DEPLOY = Path(__file__).parents[2] / "deploy"
FILLED = {
    "INTEGRA_COUNTRY": "PT",
    "INTEGRA_DOMAIN": "node.example.pt",
    "INTEGRA_SECRET_KEY": "0f" * 24,
    "POSTGRES_PASSWORD": "a1b2c3d4e5f6",
    "MEILI_MASTER_KEY": "0123456789abcdef0123",
}
SECRETS = ("INTEGRA_SECRET_KEY", "POSTGRES_PASSWORD", "MEILI_MASTER_KEY")
PROGRAM = ("api", "worker", "beat")
BROKER = "redis://127.0.0.1:6379/12"


def compose_command() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


@pytest.fixture(scope="module")
def compose() -> list[str]:
    found = compose_command()
    if found is None:
        reason = "no docker-compose nor `docker compose` here (apt-get install docker-compose)"
        if REQUIRE_SERVICES:
            pytest.fail(reason)
        pytest.skip(reason)
    return found


def env_file(path: Path, values: dict[str, str]) -> Path:
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return path


def config(compose: list[str], which: str, env: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in FILLED and k != "INTEGRA_COUNTRY"}
    return subprocess.run(
        [*compose, "--env-file", str(env), "-f", str(DEPLOY / f"compose.{which}.yml"), "config"],
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("which", ["node", "hub"])
def test_each_compose_file_is_valid_and_names_a_missing_secret(
    compose: list[str], which: str, tmp_path: Path
) -> None:
    example = DEPLOY / f"{which}.env.example"
    as_given = config(compose, which, example)  # its secrets are left empty on purpose
    assert as_given.returncode != 0
    assert re.search(
        r"set (INTEGRA_SECRET_KEY|POSTGRES_PASSWORD|MEILI_MASTER_KEY)", as_given.stderr
    )

    filled = dict(_read_env(example)) | FILLED
    done = config(compose, which, env_file(tmp_path / "filled.env", filled))
    assert done.returncode == 0, done.stderr
    services = yaml.safe_load(done.stdout)["services"]
    assert set(services) == {"postgres", "redis", "meilisearch", "api", "worker", "beat", "proxy"}
    for name, service in services.items():
        for needed, condition in service.get("depends_on", {}).items():
            assert condition == {"condition": "service_healthy"}, (name, needed)
            assert "healthcheck" in services[needed], f"{name} waits on {needed}, which has none"
    assert {services[n]["image"] for n in PROGRAM} == {"integra-exchange:latest"}
    role = services["api"]["environment"]["INTEGRA_ROLE"]
    assert role == which and services["api"]["environment"]["INTEGRA_ENVIRONMENT"] == "production"
    for secret in SECRETS:  # never a default: compose stops without it
        missing = config(compose, which, env_file(tmp_path / "m.env", filled | {secret: ""}))
        assert missing.returncode != 0 and f"set {secret}" in missing.stderr


@pytest.mark.parametrize("which", ["node", "hub"])
def test_every_setting_the_deployment_gives_is_one_the_program_reads(which: str) -> None:
    known = {name for field in Settings.model_fields for name in env_names(field)}
    compose = _load(which, FILLED)
    for name in PROGRAM:
        given = set(compose["services"][name]["environment"])
        ours = {v for v in given if v.startswith(("INTEGRA_", "MEILI_", "DATABASE_"))}
        assert ours <= known, f"{name}: {sorted(ours - known)} are not settings"
    text_ = (DEPLOY / f"compose.{which}.yml").read_text()
    for variable, _ in _read_env(DEPLOY / f"{which}.env.example"):
        assert variable == "COMPOSE_PROJECT_NAME" or f"${{{variable}" in text_, variable
    for unit in (DEPLOY / "systemd").glob("*.service"):
        for variable in re.findall(r"Environment=(\w+)=", unit.read_text()):
            assert variable in known, f"{unit.name}: {variable}"


def test_the_systemd_units_parse() -> None:
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed")
    units = sorted(str(p) for p in (DEPLOY / "systemd").iterdir())
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *units],
        capture_output=True,
        text=True,
        check=False,
    )
    # The program is not installed under /opt/integra here; anything else is a mistake.
    said = [line for line in done.stderr.splitlines() if "is not executable" not in line]
    assert not said, said


# --- the node's services as local processes ----------------------------------------------------


def _read_env(path: Path) -> list[tuple[str, str]]:
    pairs = []
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            pairs.append((name.strip(), value.strip()))
    return pairs


def _load(which: str, values: dict[str, str]) -> dict[str, Any]:
    """The compose file as compose reads it: ${VAR:?msg} and ${VAR:-default} filled in."""

    def fill(match: re.Match[str]) -> str:
        name, kind, rest = match.group(1), match.group(2), match.group(3)
        if values.get(name):
            return values[name]
        if kind == ":?":
            raise AssertionError(f"compose would stop: {rest}")
        return rest or ""

    raw = (DEPLOY / f"compose.{which}.yml").read_text()
    filled = re.sub(r"\$\{(\w+)(?:(:[?-])([^}]*))?\}", fill, raw.replace("$$", "\0"))
    loaded: dict[str, Any] = yaml.safe_load(filled.replace("\0", "$"))
    return loaded


@pytest.fixture
def node_services(database: Database, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """api, worker and beat: each started with its command and environment from the node's
    compose file. What names a container is replaced by what runs here: the local PostgreSQL
    (a fresh database) and Redis, a data directory, a free port, and SQL search (there is no
    Meilisearch server here); the outbox sweep comes every 2 s instead of 30."""
    if database.backend != "postgresql":
        pytest.skip("the compose file runs PostgreSQL; SQLite has no place in it")
    if not redis_up():
        if REQUIRE_SERVICES:
            pytest.fail("Redis is required here (CI) but does not answer on 127.0.0.1:6379")
        pytest.skip("Redis not reachable on 127.0.0.1:6379 (set CI=true to require it)")
    services = _load("node", FILLED)["services"]
    db, port = database.fresh_copy(), free_port()
    here = {
        "DATABASE_URL": db,
        "INTEGRA_BROKER_URL": BROKER,
        "INTEGRA_DATA_DIR": str(tmp_path / "data"),
        "INTEGRA_SEARCH_BACKEND": "sql",
        "INTEGRA_HOST": "127.0.0.1",
        "INTEGRA_PORT": str(port),
        "INTEGRA_OUTBOX_SWEEP_INTERVAL": "PT2S",
    }
    base = {k: v for k, v in os.environ.items() if not k.startswith(("INTEGRA_", "MEILI_"))}
    base.pop("DATABASE_URL", None)
    envs = {}
    for name in PROGRAM:
        given = {k: str(v) for k, v in services[name]["environment"].items()}
        envs[name] = base | {k: v for k, v in given.items() if k != "MEILI_URL"} | here
    bin_dir = Path(sys.executable).parent
    celery = [str(bin_dir / "celery"), "-A", "node.worker"]
    subprocess.run([*celery, "purge", "-f"], env=envs["worker"], capture_output=True, timeout=60)
    admin = envs["api"]  # what an operator's `docker compose exec api integra ...` would have
    shown = run_cli("keys", "init", database_url=db, data_dir=tmp_path / "data", env=admin)
    assert shown.returncode == 0, shown.stderr
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name in PROGRAM:
            command = [
                str(bin_dir / c) if c in ("integra", "celery") else c
                for c in services[name]["command"]
            ]
            command = [
                f"--schedule={tmp_path / 'beat-schedule'}" if c.startswith("--schedule=") else c
                for c in command
            ]
            with (tmp_path / f"{name}.log").open("wb") as log:
                processes[name] = subprocess.Popen(
                    command, env=envs[name], stdout=log, stderr=subprocess.STDOUT
                )
        yield {"url": f"http://127.0.0.1:{port}", "db": db, "env": admin, "logs": tmp_path}
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def wait_for(what: str, check: Any, logs: Path, seconds: float = 120) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            found = check()
        except (httpx.TransportError, ValueError):
            found = None
        if found:
            return found
        time.sleep(0.5)
    said = "\n".join(f"--- {p.name}\n{p.read_text()[-1500:]}" for p in sorted(logs.glob("*.log")))
    raise AssertionError(f"timed out waiting for {what}\n{said}")


def rows(db: str, sql: str, **params: Any) -> list[Any]:
    engine = create_engine(sync_url(db))
    try:
        with engine.begin() as conn:
            return list(conn.execute(text(sql), params))
    finally:
        engine.dispose()


def test_the_node_compose_services_run_as_a_working_node(node_services: dict[str, Any]) -> None:
    url, db, logs = node_services["url"], node_services["db"], node_services["logs"]
    ready = wait_for(
        "/readyz", lambda: httpx.get(f"{url}/readyz", timeout=10).status_code == 200, logs
    )
    assert ready
    checks = httpx.get(f"{url}/readyz", timeout=10).json()["checks"]
    assert {n: checks[n]["state"] for n in ("database", "broker", "worker", "signing_key")} == {
        "database": "ok",
        "broker": "ok",
        "worker": "ok",
        "signing_key": "ok",
    }
    version = httpx.get(f"{url}/api/v1/version").json()
    assert version["name"] == "integra-exchange" and version["role"] == "node"

    # A publish through the API: the worker signs it into the feed and indexes it.
    env = node_services["env"]
    added = run_cli(
        "user",
        "add",
        "np@example.pt",
        "--role",
        "admin",
        "--password-stdin",
        database_url=db,
        data_dir=Path(env["INTEGRA_DATA_DIR"]),
        env=env,
        stdin="a long enough password\n",
    )
    assert added.returncode == 0, added.stderr
    token = run_cli(
        "token",
        "create",
        "np@example.pt",
        "--name",
        "t",
        database_url=db,
        data_dir=Path(env["INTEGRA_DATA_DIR"]),
        env=env,
    ).stdout.strip()
    admin = {"Authorization": f"Bearer {token}"}
    body = factories.practice(title="Compose-deployed mentoring", country="PT")
    created = httpx.post(f"{url}/api/v1/practices", json=body, headers=admin)
    assert created.status_code == 201, created.text
    published = httpx.post(
        f"{url}/api/v1/practices/{created.json()['id']}/publish",
        json=factories.CONFIRMED,
        headers=admin | {"If-Match": created.headers["etag"]},
    )
    assert published.status_code == 200, published.text
    record = f"PT:{created.json()['id']}"

    def in_feed() -> bool:
        page = httpx.get(f"{url}/federation/v1/feed", params={"limit": 1000}).json()
        return any(e["payload"]["id"] == record for e in page["entries"])

    wait_for("the worker to sign the practice into the feed", in_feed, logs)
    assert "integra.outbox.process" in (logs / "worker.log").read_text()

    # A job left pending, as a crash between a commit and its hand-over leaves it: only the
    # beat's sweep (every INTEGRA_OUTBOX_SWEEP_INTERVAL) can bring it to the worker.
    [(job,)] = rows(
        db,
        "INSERT INTO outbox_message (topic, entity_id, created_at, attempts) "
        "VALUES ('practice.changed', :id, now(), 0) RETURNING id",
        id=created.json()["id"],
    )
    done = "SELECT processed_at FROM outbox_message WHERE id = :job"
    wait_for("the beat's sweep to do the pending job", lambda: rows(db, done, job=job)[0][0], logs)
    assert "Sending due task outbox-sweep" in (logs / "beat.log").read_text()
