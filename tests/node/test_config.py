"""One configuration: the server and every command on a node read the same file in its data
directory, so an administrator's shell needs none of the server's environment; and a command
whose database a running node serves with other settings says so and stops."""

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import factories
from tests.conftest import Database, free_port

pytestmark = pytest.mark.anyio
SET_ELSEWHERE = ("DATABASE_URL", "MEILI_URL", "MEILI_MASTER_KEY")


def shell(**env: str) -> dict[str, str]:
    """An administrator's shell: none of the node's settings in its environment."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("INTEGRA_") and k not in SET_ELSEWHERE
    }
    return clean | {"COLUMNS": "200"} | env


def integra(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "node", *args],
        cwd=cwd,
        env=shell(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def wait_for(what: str, check: Any, seconds: float = 90) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            found = check()
            if found:
                return found
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_practice_imported_from_a_shell_with_only_the_configuration_file_enters_the_feed(
    database: Database, tmp_path: Path
) -> None:
    """The National Point writes the configuration once, from the environment it set up; the
    server and an administrator's shell (no INTEGRA_ variable, no DATABASE_URL: only the data
    directory, here the default `.integra` of the working directory) then agree on it."""
    db = database.fresh_copy()
    written = ok(integra("config", "init", cwd=tmp_path, DATABASE_URL=db, INTEGRA_COUNTRY="GR"))
    path = tmp_path / ".integra" / "integra.toml"
    assert f"wrote {path}" in written
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it holds the secret key
    ok(integra("keys", "init", cwd=tmp_path))
    assert list((tmp_path / ".integra" / "keys").glob("*.pem"))

    port = free_port()
    with (tmp_path / "node.log").open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "node", "serve", "--port", str(port)],
            cwd=tmp_path,
            env=shell(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        ready = wait_for("the node", lambda: httpx.get(f"{url}/readyz", timeout=10))
        assert ready.status_code == 200, ready.text  # its country and key came from the file
        assert ready.json()["checks"]["signing_key"]["state"] == "ok"

        practice = factories.practice(status="published", ref="gr-mentoring-1")
        rows = tmp_path / "practices.json"
        rows.write_text(json.dumps({"practices": [practice]}))
        imports = ("practices", "import", str(rows), "--confirm-no-person")

        # A shell whose environment says otherwise is stopped before it writes anything.
        refused = integra(*imports, cwd=tmp_path, INTEGRA_COUNTRY="PT")
        assert refused.returncode == 1, refused.stdout + refused.stderr
        said = " ".join(refused.stderr.split())
        assert "a node serving this database" in said and "runs with other settings" in said
        assert "country: GR on the node, PT here" in said
        assert f"its file: {path}" in said
        found = httpx.get(f"{url}/api/v1/practices/search", params={"q": "mentoring"})
        assert found.json()["total"] == 0

        # Accounts depend on the secret only: listed with another country, but a token made
        # with another secret would never open this node.
        ok(integra("user", "list", cwd=tmp_path, INTEGRA_COUNTRY="PT"))
        token = integra("token", "list", "np@example.org", cwd=tmp_path, INTEGRA_SECRET_KEY="x")
        assert token.returncode == 1 and "secret_key: not the one on the node" in token.stderr

        assert "1 created" in ok(integra(*imports, cwd=tmp_path))

        def in_feed() -> bool:
            page = httpx.get(f"{url}/federation/v1/feed", timeout=10)
            return page.status_code == 200 and practice["title"] in page.text

        wait_for("the practice in the feed", in_feed)
    finally:
        server.terminate()
        server.wait(timeout=30)
    # The node stopped: its heartbeat went with it, so nothing stops the command any more.
    shown = integra("practices", "export", cwd=tmp_path, INTEGRA_COUNTRY="PT")
    assert shown.returncode == 0, shown.stderr


def test_config_show_says_where_each_setting_comes_from_with_secrets_masked(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "integra.toml").write_text(
        'country = "GR"\n'
        'secret_key = "a-secret-that-must-never-be-printed"\n'
        'broker_url = "redis://:broker-password@127.0.0.1:6379/0"\n'
        "port = 8123\n"
        'keys_dir = "keys-elsewhere"\n'
    )
    env = {"INTEGRA_DATA_DIR": str(data), "INTEGRA_PORT": "9000"}
    shown = json.loads(ok(integra("config", "show", "--json", cwd=tmp_path, **env)))
    settings = shown["settings"]
    assert shown["config_file"] == str(data / "integra.toml") and shown["config_file_exists"]
    assert settings["country"] == {"value": "GR", "from": str(data / "integra.toml")}
    assert settings["port"] == {"value": 9000, "from": "environment (INTEGRA_PORT)"}
    assert settings["host"] == {"value": "127.0.0.1", "from": "default"}
    assert settings["secret_key"]["value"] == "********"
    assert settings["broker_url"]["value"] == "redis://:********@127.0.0.1:6379/0"
    # A relative path in the file is relative to the file.
    assert settings["keys_dir"]["value"] == str(data / "keys-elsewhere")

    text = ok(integra("config", "show", cwd=tmp_path, **env))
    assert "a-secret-that-must-never-be-printed" not in text and "broker-password" not in text
    port_line = next(line for line in text.splitlines() if line.startswith("port "))
    assert port_line.split() == ["port", "9000", "environment", "(INTEGRA_PORT)"]


def test_a_file_named_by_integra_config_can_place_the_data_directory(tmp_path: Path) -> None:
    named = tmp_path / "etc" / "integra.toml"
    named.parent.mkdir()
    named.write_text('data_dir = "../var"\nrole = "hub"\ncountry = "EU"\n')
    shown = json.loads(
        ok(integra("config", "show", "--json", cwd=tmp_path, INTEGRA_CONFIG=str(named)))
    )
    assert shown["config_file"] == str(named)
    assert shown["settings"]["data_dir"] == {"value": str(tmp_path / "var"), "from": str(named)}
    assert shown["settings"]["role"]["value"] == "hub"


def test_a_mistake_in_the_file_is_named_not_ignored(tmp_path: Path) -> None:
    data = tmp_path / ".integra"
    data.mkdir()
    config = data / "integra.toml"
    for text, said in (
        (
            'contry = "GR"\n',
            f"bad configuration file: {config}: unknown setting 'contry' (did you mean 'country'?)",
        ),
        ('port = "http"\n', f"bad setting: port in {config}: Input should be a valid integer"),
        ('country = "gr"\n', f"bad setting: country in {config}: String should match pattern"),
        ("country = GR\n", f"bad configuration file: {config}: Invalid value"),
    ):
        config.write_text(text)
        result = integra("practices", "export", cwd=tmp_path)
        assert result.returncode == 2, result.stdout + result.stderr
        assert said in " ".join(result.stderr.split()), result.stderr
        assert "Traceback" not in result.stderr
    named = integra("config", "show", cwd=tmp_path, INTEGRA_CONFIG=str(tmp_path / "none.toml"))
    assert named.returncode == 2
    assert f"INTEGRA_CONFIG names {tmp_path / 'none.toml'}, which is not a file" in named.stderr


def test_config_init_keeps_an_existing_file_unless_forced(tmp_path: Path) -> None:
    first = ok(integra("config", "init", cwd=tmp_path, INTEGRA_COUNTRY="GR"))
    assert "secret_key: generated" in first
    config = tmp_path / ".integra" / "integra.toml"
    written = config.read_text()
    assert 'country = "GR"' in written and "# port = 8000" in written
    again = integra("config", "init", cwd=tmp_path, INTEGRA_COUNTRY="PT")
    assert again.returncode == 1 and "exists" in again.stderr
    assert config.read_text() == written
    ok(integra("config", "init", "--force", cwd=tmp_path, INTEGRA_COUNTRY="PT"))
    rewritten = config.read_text()
    assert 'country = "PT"' in rewritten
    # The secret the file already held is kept, not generated anew: tokens stay valid.
    secret = next(line for line in written.splitlines() if line.startswith("secret_key"))
    assert secret in rewritten
