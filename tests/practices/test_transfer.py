"""`integra practices` and `integra study-visits` import/export, and `integra search reindex`."""

import json
from pathlib import Path

import pytest

from tests.conftest import Database, run_cli
from tests.registry.test_transfer import snapshot

ROOT = Path(__file__).parents[2]
REGISTRY = ROOT / "registry" / "sample_data" / "registry.json"
PRACTICES = ROOT / "practices" / "sample_data" / "practices.json"
VISITS = ROOT / "practices" / "sample_data" / "study_visits.json"


def cli(db: str, tmp_path: Path, *args: str) -> str:
    result = run_cli(*args, database_url=db, data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    return result.stdout


# Each command is a process of its own (seconds of CPU): what several tests start from is made
# once per database with the commands, and each test takes a copy of it.
@pytest.fixture(scope="module")
def with_registry(database: Database, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A node with the sample registry, as `integra registry import` leaves it."""
    url, data = database.fresh_copy(), tmp_path_factory.mktemp("registry")
    assert (
        run_cli("registry", "import", str(REGISTRY), database_url=url, data_dir=data).returncode
        == 0
    )
    return url


@pytest.fixture(scope="module")
def with_records(
    database: Database, with_registry: str, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """The same node with the sample practices and study visits imported (what the first test
    checks the imports say)."""
    url, data = database.copy_of(with_registry), tmp_path_factory.mktemp("records")
    cli(url, data, "practices", "import", str(PRACTICES))
    cli(url, data, "study-visits", "import", str(VISITS))
    return url


@pytest.fixture
def db(database: Database, with_registry: str) -> str:
    return database.copy_of(with_registry)


@pytest.fixture
def imported(database: Database, with_records: str) -> str:
    return database.copy_of(with_records)


def test_sample_practices_import_once_and_search_finds_them(db: str, tmp_path: Path) -> None:
    first = cli(db, tmp_path, "practices", "import", str(PRACTICES))
    assert "0 refused" in first
    second = cli(db, tmp_path, "practices", "import", str(PRACTICES))
    assert "0 created, 0 updated" in second
    published = sum(
        p["status"] == "published" for p in json.loads(PRACTICES.read_text())["practices"]
    )
    assert f"indexed {published} published practices" in cli(db, tmp_path, "search", "reindex")
    visits = cli(db, tmp_path, "study-visits", "import", str(VISITS))
    assert "10 created" in visits
    assert "0 created, 0 updated, 10 unchanged" in cli(
        db, tmp_path, "study-visits", "import", str(VISITS)
    )


def test_practice_exports_import_into_an_empty_node(
    database: Database, imported: str, with_registry: str, tmp_path: Path
) -> None:
    db = imported
    for fmt in ("json", "csv"):
        out = tmp_path / f"practices.{fmt}"
        cli(db, tmp_path, "practices", "export", "--format", fmt, "-o", str(out))
        same = cli(db, tmp_path, "practices", "import", str(out))
        assert "0 created, 0 updated, 65 unchanged, 0 refused" in same, (fmt, same)
        other = database.copy_of(with_registry)  # its registry only
        taken = cli(other, tmp_path, "practices", "import", str(out))
        assert "65 created" in taken and "0 refused" in taken, taken
        if fmt == "json":
            again = cli(other, tmp_path, "practices", "export")
            assert json.loads(again) == json.loads(out.read_text())
            visits = tmp_path / "visits.json"
            cli(db, tmp_path, "study-visits", "export", "-o", str(visits))
            moved = cli(other, tmp_path, "study-visits", "import", str(visits))
            assert "10 created" in moved and "0 refused" in moved, moved
            exported = json.loads(cli(other, tmp_path, "study-visits", "export"))
            assert exported == json.loads(visits.read_text())


def test_participant_names_stay_home_unless_an_admin_asks(imported: str, tmp_path: Path) -> None:
    db = imported
    names = [
        n for v in json.loads(VISITS.read_text())["study_visits"] for n in v["participant_names"]
    ]
    for fmt in ("json", "csv"):
        exported = cli(db, tmp_path, "study-visits", "export", "--format", fmt)
        assert "Lyon" in exported or "Λυών" in exported
        assert not any(n in exported for n in names), fmt
    refused = run_cli(
        "study-visits", "export", "--include-participants", database_url=db, data_dir=tmp_path
    )
    assert refused.returncode != 0 and "--token-stdin" in refused.stderr
    before = snapshot(db)["audit"]
    added = run_cli(
        "user",
        "add",
        "np@example.org",
        "--role",
        "admin",
        "--password-stdin",
        database_url=db,
        data_dir=tmp_path,
        stdin="a long enough password\n",
    )
    assert added.returncode == 0
    token = cli(db, tmp_path, "token", "create", "np@example.org", "--name", "x").strip()
    on_command_line = run_cli(
        "study-visits",
        "export",
        "--include-participants",
        "--token",
        token,
        database_url=db,
        data_dir=tmp_path,
    )
    assert on_command_line.returncode != 0
    assert "never a command-line argument" in on_command_line.stderr
    assert token not in on_command_line.stdout + on_command_line.stderr
    full = run_cli(
        "study-visits",
        "export",
        "--include-participants",
        database_url=db,
        data_dir=tmp_path,
        env={"INTEGRA_TOKEN": token},
    ).stdout
    assert all(n in full for n in names)
    assert snapshot(db)["audit"] == before + 3  # user, token, and the export itself
