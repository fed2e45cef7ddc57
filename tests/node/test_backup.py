"""`integra backup` and `integra restore` as an operator runs them: a running node backed up,
destroyed, restored from the archive, and taken up again by the hub without a new enrolment."""

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import httpx
import psycopg
from sqlalchemy import create_engine, inspect, text

from node.core.settings import sync_url
from tests import factories
from tests.conftest import KEPT_SETTINGS, PG_ADMIN_URL, Database, free_port, run_cli

PASSPHRASE = "a backup passphrase, long enough\n"


def integra(
    data: Path, *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`integra` with nothing from this environment but the data directory (the node's
    configuration file, which `config init` wrote, says the rest)."""
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith("INTEGRA_") or k in KEPT_SETTINGS
    }
    clean.pop("DATABASE_URL", None)
    clean |= {"INTEGRA_DATA_DIR": str(data), "COLUMNS": "200"} | (env or {})
    return subprocess.run(
        [sys.executable, "-m", "node", *args],
        env=clean,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=180,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def serve(data: Path, port: int, log: Path, *args: str) -> subprocess.Popen[bytes]:
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith("INTEGRA_") or k in KEPT_SETTINGS
    }
    clean.pop("DATABASE_URL", None)
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "node", "serve", "--port", str(port), *args],
            env=clean | {"INTEGRA_DATA_DIR": str(data)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.3)
    process.kill()
    raise AssertionError(log.read_text()[-3000:])


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=30)


def records(db: str) -> str:
    """A digest of the node's practices and organisations, row by row."""
    engine = create_engine(sync_url(db))
    try:
        with engine.connect() as conn:
            rows = [
                [
                    tuple(map(str, row))
                    for row in conn.execute(text(f"SELECT * FROM {t} ORDER BY id"))
                ]
                for t in ("practice", "organisation")
            ]
    finally:
        engine.dispose()
    assert rows[0] and rows[1]
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def tables(db: str) -> list[str]:
    engine = create_engine(sync_url(db))
    try:
        with engine.connect() as conn:
            return inspect(conn).get_table_names()
    finally:
        engine.dispose()


def destroy(db: str, data: Path, backend: str) -> None:
    """The machine is lost: the data directory (keys, configuration, SQLite file) and the
    database; an empty PostgreSQL database of the same name is what a new server offers."""
    shutil.rmtree(data)
    if backend == "postgresql":
        name = db.rpartition("/")[2]
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')


def tampered(archive: Path, target: Path) -> None:
    """The same archive with one byte of the signing key changed, its manifest as it was."""
    with tarfile.open(archive, "r:gz") as source, tarfile.open(target, "w:gz") as out:
        for member in source.getmembers():
            data = source.extractfile(member).read()  # type: ignore[union-attr]
            if member.name.startswith("keys/"):
                data = data[:40] + bytes([data[40] ^ 1]) + data[41:]
            out.addfile(member, io.BytesIO(data))


def test_a_node_restored_from_its_backup_keeps_its_records_and_syncs_without_enrolment(
    database: Database, tmp_path: Path
) -> None:
    data = tmp_path / "pt"
    db = database.fresh_copy() if database.backend == "postgresql" else f"sqlite:///{data}/node.db"
    settings = {"DATABASE_URL": db, "INTEGRA_COUNTRY": "PT"}
    ok(integra(data, "config", "init", env=settings))  # from here on the file says it all
    public = re.search(r"public key\s+(\S+)", ok(integra(data, "keys", "init"))).group(1)  # type: ignore[union-attr]
    ok(
        integra(
            data,
            "user",
            "add",
            "np@example.pt",
            "--role",
            "admin",
            "--password-stdin",
            stdin="a long enough password\n",
        )
    )
    token = ok(integra(data, "token", "create", "np@example.pt", "--name", "t")).strip()
    admin = {"Authorization": f"Bearer {token}"}
    port, log = free_port(), tmp_path / "node.log"
    url = f"http://127.0.0.1:{port}"
    node = serve(data, port, log, "--sample-data")
    hub_db, hub_data = database.fresh_copy(), tmp_path / "hub"
    try:
        enrolled = run_cli(
            "hub",
            "enrol",
            "--country",
            "PT",
            "--url",
            url,
            "--key",
            public,
            database_url=hub_db,
            data_dir=hub_data,
        )
        assert enrolled.returncode == 0, enrolled.stderr
        first = run_cli("hub", "sync", database_url=hub_db, data_dir=hub_data)
        assert re.search(r"PT: [1-9]\d* applied, 0 unchanged, 0 refused", first.stdout), first

        # Backed up while it runs, sealed and not.
        sealed, plain = tmp_path / "pt.tar.gz.enc", tmp_path / "pt.tar.gz"
        made = ok(
            integra(data, "backup", "-o", str(sealed), "--passphrase-stdin", stdin=PASSPHRASE)
        )
        assert "(encrypted)" in made and "keys/" in made and "config/integra.toml" in made
        ok(integra(data, "backup", "-o", str(plain)))
        assert sealed.stat().st_mode & 0o777 == 0o600 and plain.stat().st_mode & 0o777 == 0o600
        checkpoint = httpx.get(f"{url}/federation/v1/checkpoint").json()
        before = records(db)
    finally:
        stop(node)

    destroy(db, data, database.backend)
    # Refused, and nothing touched: a wrong passphrase, an archive altered after the fact.
    wrong = integra(data, "restore", str(sealed), "--passphrase-stdin", stdin="not the one\n")
    assert wrong.returncode != 0 and "wrong passphrase" in wrong.stderr, wrong.stderr
    tampered(plain, tmp_path / "tampered.tar.gz")
    altered = integra(data, "restore", str(tmp_path / "tampered.tar.gz"))
    assert altered.returncode != 0, altered.stdout
    assert "checksum mismatch on keys/" in altered.stderr, altered.stderr
    assert not data.exists()
    if database.backend == "postgresql":
        assert tables(db) == []

    restored = ok(integra(data, "restore", str(sealed), "--passphrase-stdin", stdin=PASSPHRASE))
    assert "restored" in restored and "signing key" in restored
    assert {p.stat().st_mode & 0o777 for p in (data / "keys").iterdir()} == {0o600}
    assert (data / "integra.toml").stat().st_mode & 0o777 == 0o600
    node = serve(data, port, log)  # the same address the hub enrolled
    try:
        again = httpx.get(f"{url}/federation/v1/checkpoint").json()
        assert again["key"] == checkpoint["key"]  # signed with the same key
        assert (again["checkpoint"]["size"], again["checkpoint"]["root"]) == (
            checkpoint["checkpoint"]["size"],
            checkpoint["checkpoint"]["root"],
        )
        assert records(db) == before
        # The old token still works (the secret key came back with the configuration), and
        # what the node publishes now reaches the hub under the same enrolment.
        created = httpx.post(
            f"{url}/api/v1/practices", headers=admin, json=factories.practice(country="PT")
        )
        assert created.status_code == 201, created.text
        published = httpx.post(
            f"{url}/api/v1/practices/{created.json()['id']}/publish",
            json=factories.CONFIRMED,
            headers=admin | {"If-Match": created.headers["etag"]},
        )
        assert published.status_code == 200, published.text
        _due_now(hub_db)
        synced = run_cli("hub", "sync", database_url=hub_db, data_dir=hub_data)
        assert "PT: 1 applied, 0 unchanged, 0 refused" in synced.stdout, synced
    finally:
        stop(node)


def _due_now(db: str) -> None:
    engine = create_engine(sync_url(db))
    with engine.begin() as conn:
        conn.execute(text("UPDATE peer_sync SET next_attempt_at = NULL"))
    engine.dispose()


def test_a_backup_with_a_short_passphrase_or_over_a_file_is_refused(
    database: Database, tmp_path: Path
) -> None:
    data, db = tmp_path / "n", database.fresh_copy()
    short = integra(
        data,
        "backup",
        "-o",
        str(tmp_path / "b"),
        "--passphrase-stdin",
        env={"DATABASE_URL": db},
        stdin="short\n",
    )
    assert short.returncode != 0 and "at least 12 characters" in short.stderr
    (tmp_path / "exists").write_text("")
    over = integra(data, "backup", "-o", str(tmp_path / "exists"), env={"DATABASE_URL": db})
    assert over.returncode != 0 and "exists" in over.stderr
    made = integra(data, "backup", "-o", str(tmp_path / "b.tar.gz"), env={"DATABASE_URL": db})
    manifest = json.loads(_member(tmp_path / "b.tar.gz", "manifest.json"))
    assert made.returncode == 0 and manifest["database"] == database.backend
    # Over a node that holds data, a restore needs --replace.
    refused = integra(data, "restore", str(tmp_path / "b.tar.gz"), env={"DATABASE_URL": db})
    assert refused.returncode != 0 and "--replace" in refused.stderr


def _member(archive: Path, name: str) -> bytes:
    with tarfile.open(archive, "r:gz") as tar:
        return tar.extractfile(name).read()  # type: ignore[union-attr]
