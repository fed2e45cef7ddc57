"""Account administration from the console: every change takes effect and is audited."""

from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from node.core.settings import sync_url
from tests.conftest import Database, run_cli


@pytest.fixture
def db(database: Database) -> str:
    return database.fresh_copy()


def audit_actions(url: str) -> list[str]:
    engine = create_engine(sync_url(url))
    with engine.connect() as conn:
        actions = [r[0] for r in conn.execute(text("SELECT action FROM audit_entry ORDER BY id"))]
    engine.dispose()
    return actions


def test_a_revoked_token_or_a_deactivated_admin_can_no_longer_export_contacts(
    db: str, tmp_path: Path
) -> None:
    def cli(*args: str, stdin: str | None = None) -> str:
        result = run_cli(*args, database_url=db, data_dir=tmp_path, stdin=stdin)
        assert result.returncode == 0, result.stderr
        return result.stdout

    cli(
        "user",
        "add",
        "np@example.org",
        "--role",
        "admin",
        "--password-stdin",
        stdin="a long enough password\n",
    )
    first = cli("token", "create", "np@example.org", "--name", "one").strip()
    second = cli("token", "create", "np@example.org", "--name", "two").strip()
    assert first[:8] in cli("token", "list", "np@example.org")

    cli("token", "revoke", "--stdin", stdin=first + "\n")  # never an argument
    refused = run_cli(
        "registry",
        "export",
        "--include-contacts",
        "--token-stdin",
        stdin=first + "\n",
        database_url=db,
        data_dir=tmp_path,
    )
    assert refused.returncode == 3
    still = run_cli(
        "registry",
        "export",
        "--include-contacts",
        "--token-stdin",
        stdin=second + "\n",
        database_url=db,
        data_dir=tmp_path,
    )
    assert still.returncode == 0, still.stderr

    cli("user", "set", "np@example.org", "--inactive")
    assert "inactive" in cli("user", "list")
    after = run_cli(
        "registry",
        "export",
        "--include-contacts",
        "--token-stdin",
        stdin=second + "\n",
        database_url=db,
        data_dir=tmp_path,
    )
    assert after.returncode == 3
    actions = audit_actions(db)
    assert actions[:4] == ["create", "token_issue", "token_issue", "token_revoke"]
    assert "update" in actions


def test_bad_account_commands_explain_and_store_nothing(db: str, tmp_path: Path) -> None:
    bad_email = run_cli(
        "user",
        "add",
        "not-an-email",
        "--role",
        "admin",
        "--password-stdin",
        database_url=db,
        data_dir=tmp_path,
        stdin="a long enough password\n",
    )
    short = run_cli(
        "user",
        "add",
        "a@example.org",
        "--role",
        "admin",
        "--password-stdin",
        database_url=db,
        data_dir=tmp_path,
        stdin="short\n",
    )
    unknown_org = run_cli(
        "user",
        "add",
        "e@example.org",
        "--role",
        "editor",
        "--org",
        "nope",
        "--password-stdin",
        database_url=db,
        data_dir=tmp_path,
        stdin="a long enough password\n",
    )
    for result, words in (
        (bad_email, "not an e-mail"),
        (short, "at least 12"),
        (unknown_org, "--org nope"),
    ):
        assert result.returncode != 0 and words in result.stderr
    listed = run_cli("user", "list", database_url=db, data_dir=tmp_path)
    assert listed.stdout.strip() == ""


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"INTEGRA_HUB_SYNC_WORKERS": "-1"}, "INTEGRA_HUB_SYNC_WORKERS: Input should be greater"),
        ({"INTEGRA_PORT": "http"}, "INTEGRA_PORT: Input should be a valid integer"),
        ({"INTEGRA_ENVIRONMENT": "production"}, "Value error, INTEGRA_SECRET_KEY must be set"),
    ],
)
def test_a_bad_setting_is_named_with_its_reason_not_a_traceback(
    db: str, tmp_path: Path, env: dict[str, str], named: str
) -> None:
    result = run_cli("hub", "sync", database_url=db, data_dir=tmp_path, env=env)
    assert result.returncode == 2
    assert f"bad setting: {named}" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
