"""`integra registry import` and `export`, run as an operator runs them: in their own process."""

import asyncio
import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.ext.asyncio import async_sessionmaker

from node.core.db import create_engine as create_async_engine
from node.core.settings import async_url, sync_url
from tests.conftest import Database, run_cli
from tests.factories import make_user

SAMPLE = Path(__file__).parents[2] / "registry" / "sample_data" / "registry.json"
BAD_ROWS = {
    12: ("country", "XX", "not an ISO 3166-1 alpha-2 country code"),
    30: ("kind", "spaceship", "kind"),
    47: ("areas", "rehabilitation; astrology", "areas.1"),
}


@pytest.fixture
def db(database: Database) -> str:
    return database.fresh_copy()


@pytest.fixture(scope="module")
def sample(database: Database, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A node with the sample registry, as `integra registry import` leaves it: made once per
    database, each test that starts from it taking a copy (the command is a process of its own;
    what it says is the sample import's own test)."""
    url = database.fresh_copy()
    done = run_cli(
        "registry", "import", str(SAMPLE), database_url=url, data_dir=tmp_path_factory.mktemp("s")
    )
    assert done.returncode == 0, done.stderr
    return url


@pytest.fixture
def with_sample(database: Database, sample: str) -> str:
    return database.copy_of(sample)


def token(db: str, role: str) -> str:
    """A user of `role` and its API token, as `integra user add` and `integra token create`
    make them (tests/node/test_cli.py runs the commands)."""
    engine = create_async_engine(async_url(db), pooled=False)
    try:
        made = asyncio.run(make_user(async_sessionmaker(engine), role, email=f"{role}@example.org"))
    finally:
        asyncio.run(engine.dispose())
    return made["Authorization"].removeprefix("Bearer ")


def snapshot(url: str) -> dict[str, Any]:
    """What an import could have changed: every record's version and time, and the audit log."""
    engine = create_engine(sync_url(url))
    with engine.connect() as conn:
        orgs = conn.execute(text("SELECT id, version, updated_at FROM organisation")).all()
        contacts = conn.execute(text("SELECT id, version FROM contact_point")).all()
        protocols = conn.execute(text("SELECT id, version FROM protocol")).all()
        audit = conn.execute(text("SELECT count(*) FROM audit_entry")).scalar_one()
    engine.dispose()
    return {
        "orgs": sorted(map(tuple, orgs)),
        "contacts": sorted(map(tuple, contacts)),
        "protocols": sorted(map(tuple, protocols)),
        "audit": audit,
    }


def fifty_rows(path: Path) -> Path:
    """50 organisations; the ones on file lines 12, 30 and 47 are bad."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    header = [
        "ref",
        "name",
        "kind",
        "sector",
        "level",
        "country",
        "areas",
        "identifiers",
        "local_names",
        "address_locality",
    ]
    writer.writerow(header)
    for line in range(2, 52):
        row = [
            f"pt-body-{line}",
            f"Estabelecimento Prisional {line}",
            "prison_administration",
            "governmental",
            "local",
            "PT",
            "rehabilitation; reintegration",
            f"PT-NIPC:{600000000 + line}",
            f"pt:Estabelecimento Prisional n.º {line}",
            "Lisboa",
        ]
        if line in BAD_ROWS:
            column, value, _ = BAD_ROWS[line]
            row[header.index(column)] = value
        writer.writerow(row)
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


def test_import_stores_good_rows_names_bad_ones_and_is_idempotent(db: str, tmp_path: Path) -> None:
    file = fifty_rows(tmp_path / "prisons.csv")

    first = run_cli("registry", "import", str(file), database_url=db, data_dir=tmp_path)

    assert first.returncode == 2, first.stderr
    assert "47 created, 0 updated, 0 unchanged, 3 refused" in first.stdout
    for line, (field, _value, reason) in BAD_ROWS.items():
        assert f"row {line} (organisation 'pt-body-{line}')" in first.stderr
        assert field in first.stderr and reason in first.stderr
    before = snapshot(db)
    assert len(before["orgs"]) == 47

    second = run_cli("registry", "import", str(file), database_url=db, data_dir=tmp_path)

    assert "0 created, 0 updated, 47 unchanged, 3 refused" in second.stdout
    assert snapshot(db) == before


def test_a_changed_row_updates_only_that_record(db: str, tmp_path: Path) -> None:
    file = fifty_rows(tmp_path / "prisons.csv")
    run_cli("registry", "import", str(file), database_url=db, data_dir=tmp_path)
    file.write_text(file.read_text().replace("Lisboa", "Porto", 1), encoding="utf-8")
    result = run_cli("registry", "import", str(file), database_url=db, data_dir=tmp_path)
    assert "0 created, 1 updated, 46 unchanged" in result.stdout


def test_unreadable_files_are_refused_whole(db: str, tmp_path: Path) -> None:
    cases = {
        "wrong.csv": "name,colour\nA,blue\n",
        "broken.json": '{"organisations": [',
        "shape.json": '{"people": []}',
    }
    for name, content in cases.items():
        path = tmp_path / name
        path.write_text(content, encoding="utf-8")
        result = run_cli("registry", "import", str(path), database_url=db, data_dir=tmp_path)
        assert result.returncode == 1, name
        assert "error:" in result.stderr and name in result.stderr
    assert snapshot(db)["orgs"] == []


def test_the_sample_registry_imports_cleanly_and_twice_changes_nothing(
    db: str, tmp_path: Path
) -> None:
    first = run_cli("registry", "import", str(SAMPLE), database_url=db, data_dir=tmp_path)
    assert first.returncode == 0, first.stderr
    before = snapshot(db)
    assert len(before["orgs"]) >= 40 and len(before["protocols"]) >= 3 and before["contacts"]
    second = run_cli("registry", "import", str(SAMPLE), database_url=db, data_dir=tmp_path)
    assert " 0 created, 0 updated" in second.stdout
    assert snapshot(db) == before


def sample_emails() -> list[str]:
    """The contact points' e-mail addresses in the sample registry, in file order."""
    sample = json.loads(SAMPLE.read_text(encoding="utf-8"))
    return [
        c["email"]
        for o in sample["organisations"]
        for c in o.get("contact_points", [])
        if c.get("email")
    ]


def test_export_without_contacts_carries_no_personal_data(with_sample: str, tmp_path: Path) -> None:
    db = with_sample
    emails = sample_emails()
    assert emails, "the sample has no e-mails: this test would check nothing"
    for fmt in ("json", "csv", "hsds"):
        result = run_cli("registry", "export", "--format", fmt, database_url=db, data_dir=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "EPANODOS" in result.stdout
        assert not any(e in result.stdout for e in emails), fmt


def test_contact_export_needs_an_admin_token_and_is_audited(
    with_sample: str, tmp_path: Path
) -> None:
    db = with_sample
    no_token = run_cli(
        "registry", "export", "--include-contacts", database_url=db, data_dir=tmp_path
    )
    assert no_token.returncode != 0 and "--token-stdin" in no_token.stderr

    tokens = {role: token(db, role) for role in ("practitioner", "admin")}
    refused = run_cli(
        "registry",
        "export",
        "--include-contacts",
        "--token-stdin",
        stdin=tokens["practitioner"] + "\n",
        database_url=db,
        data_dir=tmp_path,
    )
    assert refused.returncode == 3 and "administrator" in refused.stderr

    audit_before = snapshot(db)["audit"]
    allowed = run_cli(
        "registry",
        "export",
        "--include-contacts",
        "--token-stdin",
        stdin=tokens["admin"] + "\n",
        database_url=db,
        data_dir=tmp_path,
    )
    assert allowed.returncode == 0, allowed.stderr
    exported = json.loads(allowed.stdout)
    contacts = [c for o in exported["organisations"] for c in o["contact_points"]]
    assert contacts and all(c["email"] or c["phones"] for c in contacts)
    expected = sample_emails()
    exported_emails = [c["email"] for c in contacts if c["email"]]
    assert len(expected) > 0
    assert sorted(exported_emails) == sorted(expected)
    assert snapshot(db)["audit"] == audit_before + len(contacts) + 1


def test_an_export_imports_into_an_empty_node_unchanged(
    database: Database, with_sample: str, tmp_path: Path
) -> None:
    db = with_sample
    exported = run_cli(
        "registry", "export", "-o", str(tmp_path / "out.json"), database_url=db, data_dir=tmp_path
    )
    assert exported.returncode == 0, exported.stderr
    other = database.fresh_copy()
    imported = run_cli(
        "registry", "import", str(tmp_path / "out.json"), database_url=other, data_dir=tmp_path
    )
    assert imported.returncode == 0, imported.stderr
    again = run_cli("registry", "export", database_url=other, data_dir=tmp_path)
    assert json.loads(again.stdout) == json.loads((tmp_path / "out.json").read_text())
