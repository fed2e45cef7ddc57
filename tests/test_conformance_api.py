"""The OpenAPI document tells the truth: schemathesis, run against a real node (a federating
one, with the sample data), anonymous and as an administrator, over every operation, finds no
server error, no status the document does not give for that operation, and no response that
does not match its documented schema.

Bounded: at most MAX_EXAMPLES generated requests per operation and phase, plus the coverage
phase's boundary cases (about 4,700 requests) as the administrator on PostgreSQL only:
anonymous requests to the protected half of the API stop at the 401, and the boundaries are
the same on SQLite, which gets the generated requests. About 90 s of CPU for both databases
(the administrator's run on PostgreSQL is two thirds of it)."""

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest

from node.core.errors import ErrorBody, ValidationErrorBody
from tests.conftest import KEPT_SETTINGS, Database, free_port
from tests.federation.conftest import administrator, new_signing_key

CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance"
)
MAX_EXAMPLES = 5
ERROR_STATUSES = {"400", "401", "403", "404", "409", "412", "413", "422", "428", "503"}


class Node(NamedTuple):
    url: str
    admin_token: str
    data_dir: Path
    backend: str


@pytest.fixture(scope="module")
def node(database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    data_dir = tmp_path_factory.mktemp("conformance")
    db = database.fresh_copy()
    federating = {"INTEGRA_COUNTRY": "GR"}  # the feed answers, rather than 503 "not configured"
    # As `integra keys init`, `user add --role admin` and `token create` (tests/node/test_cli.py
    # runs them): three Pythons started fewer
    new_signing_key(db, data_dir, "GR")
    admin = administrator(db, email="conformance@example.org")
    port = free_port()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("INTEGRA_") or k in KEPT_SETTINGS
    }
    env |= {"DATABASE_URL": db, "INTEGRA_DATA_DIR": str(data_dir), **federating}
    args = ["serve", "--sample-data", "--port", str(port), "--workers", "1"]
    process = subprocess.Popen(
        [sys.executable, "-m", "node", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process)
        token = admin["Authorization"].removeprefix("Bearer ")
        yield Node(url, token, data_dir, database.backend)
    finally:
        process.terminate()
        process.communicate(timeout=30)


def _wait_ready(url: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
        if process.poll() is not None:
            break
    process.kill()
    pytest.fail(f"node did not become ready:\n{process.communicate()[0]}")


def _schemathesis(node: Node, *options: str) -> subprocess.CompletedProcess[str]:
    """The schemathesis CLI against the node (in the node's data directory, where it keeps
    its state)."""
    program = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert program, "schemathesis is not installed: pip install -e '.[dev]'"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEMATHESIS_")}
    return subprocess.run(
        [
            program,
            "run",
            f"{node.url}/openapi.json",
            "--checks",
            CHECKS,
            "--max-examples",
            str(MAX_EXAMPLES),
            "--workers",
            "1",
            "--seed",
            "20261206",
            "--no-color",
            "--request-timeout",
            "30",
            *options,
        ],
        env=env | {"NO_COLOR": "1"},
        cwd=node.data_dir,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_anonymous_requests_meet_the_documented_responses(node: Node) -> None:
    result = _schemathesis(node, "--phases", "examples,fuzzing,stateful")
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-5000:]


def test_an_administrators_requests_meet_the_documented_responses(node: Node) -> None:
    phases = "examples,coverage,fuzzing,stateful"
    if node.backend != "postgresql":
        phases = "examples,fuzzing,stateful"
    result = _schemathesis(
        node,
        "--phases",
        phases,
        "--header",
        f"Authorization: Bearer {node.admin_token}",
    )
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-5000:]


def test_every_operation_documents_the_error_shape_and_bounds_its_path(node: Node) -> None:
    document = httpx.get(f"{node.url}/openapi.json").json()
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas, "FastAPI's 422 body is not what is sent"
    assert set(schemas["ErrorBody"]["required"]) == set(ErrorBody.model_fields) - {"fields"}
    assert set(schemas["ValidationErrorBody"]["required"]) == set(ValidationErrorBody.model_fields)
    operations = [
        (f"{method.upper()} {path}", operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]
    assert len(operations) >= 40
    for name, operation in operations:
        for status, response in operation["responses"].items():
            if status in ERROR_STATUSES:
                ref = response["content"]["application/json"]["schema"]["$ref"]
                assert ref.rsplit("/", 1)[1] in {"ErrorBody", "ValidationErrorBody", "NotReady"}, (
                    name,
                    status,
                )
        assert "400" in operation["responses"], name
        if operation.get("security"):
            assert "401" in operation["responses"], name
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path":
                assert _bounded(parameter["schema"]), (name, parameter)
                assert {"404", "422"} <= set(operation["responses"]), name


def _bounded(schema: dict[str, object]) -> bool:
    """A path parameter the server can always look up: a bounded integer, a UUID, a pattern
    or a closed set."""
    if schema.get("type") == "integer":
        return "minimum" in schema and "maximum" in schema
    return any(key in schema for key in ("format", "pattern", "enum", "const", "maxLength"))


def test_a_hold_id_past_the_largest_integer_is_a_validation_error(node: Node) -> None:
    admin = {"Authorization": f"Bearer {node.admin_token}"}
    for hold_id, status in (("9223372036854775808", 422), ("9223372036854775807", 404)):
        answer = httpx.post(
            f"{node.url}/api/v1/federation/holds/{hold_id}/release",
            json={"justification": "the finding is a public office, not a person"},
            headers=admin,
        )
        assert answer.status_code == status, answer.text
        assert {"error", "detail"} <= set(answer.json())
