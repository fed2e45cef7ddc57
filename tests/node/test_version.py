"""The version a process runs, said by the command and by the API; the licence the package
declares, in the repository."""

import subprocess
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).parents[2]
pytestmark = pytest.mark.anyio


def test_integra_version_prints_the_installed_version() -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "node", "--version"], capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == f"integra {version('integra-exchange')}"


async def test_the_version_endpoint_answers_anyone(client: httpx.AsyncClient) -> None:
    answer = await client.get("/api/v1/version")
    assert answer.status_code == 200
    body = answer.json()
    assert body["name"] == "integra-exchange" and body["version"] == version("integra-exchange")
    assert body["role"] == "node" and body["schema_revision"]


def test_the_licence_the_package_declares_is_in_the_repository() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert declared == "EUPL-1.2"
    assert text.lstrip().startswith("EUROPEAN UNION PUBLIC LICENCE v. 1.2")
    assert "‘Compatible Licences’ according to Article 5 EUPL are:" in text
