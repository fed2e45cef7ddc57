"""The registry's HSDS export against the official Open Referral HSDS 3 JSON schemas (vendored
in hsds_schema/, with their licence and source): every sample organisation, with its contacts."""

import json
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from sqlalchemy.ext.asyncio import AsyncSession

from node.core.auth import system_principal
from registry import transfer
from registry.hsds import export_hsds
from tests.conftest import Database, run_cli

SCHEMAS = Path(__file__).parent / "hsds_schema"
SAMPLE = Path(__file__).parents[2] / "registry" / "sample_data" / "registry.json"
BASE = "https://hsds.invalid/schema/"

pytestmark = pytest.mark.anyio
FORMATS = FormatChecker()


@FORMATS.checks("uri", raises=ValueError)
def _is_uri(value: object) -> bool:
    parts = urlsplit(str(value))
    return bool(parts.scheme and (parts.netloc or parts.scheme in ("mailto", "tel", "urn")))


def _validator(name: str) -> Draft202012Validator:
    resources = [
        (BASE + path.name, Resource.from_contents(json.loads(path.read_text()), DRAFT202012))
        for path in SCHEMAS.glob("*.json")
        if path.name != "openapi.json"
    ]
    registry: Registry[Any] = Registry().with_resources(resources)
    schema = {"$ref": BASE + name}
    return Draft202012Validator(schema, registry=registry, format_checker=FORMATS)


def _page_validator() -> Draft202012Validator:
    page = json.loads((SCHEMAS / "openapi.json").read_text())["components"]["schemas"]["Page"]
    return Draft202012Validator(
        {**page, "required": [*page["properties"], "contents"]}, format_checker=FORMATS
    )


def _problems(validator: Draft202012Validator, instance: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(instance)
    ]


def _nulls(value: Any, path: str = "") -> list[str]:
    if value is None:
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _nulls(v, f"{path}/{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _nulls(v, f"{path}/{i}")]
    return []


async def _export(session: AsyncSession, *, with_contacts: bool) -> dict[str, Any]:
    rows = transfer.read_rows(SAMPLE.read_bytes(), "json")
    report = await transfer.import_rows(session, rows, by=system_principal("test"))
    assert not report.errors, report.errors
    organisations, _ = await transfer.load_everything(session, with_contacts=with_contacts)
    return export_hsds(organisations, with_contacts=with_contacts)


@pytest.mark.parametrize("with_contacts", [True, False], ids=["with-contacts", "public"])
async def test_every_sample_organisation_passes_the_hsds_3_schema(
    session: AsyncSession, with_contacts: bool
) -> None:
    page = await _export(session, with_contacts=with_contacts)
    sample = json.loads(SAMPLE.read_text())["organisations"]

    assert _problems(_page_validator(), page) == []
    assert page["total_items"] == page["size"] == len(page["contents"]) == len(sample) == 52
    validator = _validator("organization.json")
    failures = {
        o["name"]: best_match(validator.iter_errors(o)).message  # type: ignore[union-attr]
        for o in page["contents"]
        if not validator.is_valid(o)
    }
    assert failures == {}
    assert _nulls(page) == [], "optional fields are left out, never written as null"
    contacts = [c for o in page["contents"] for c in o.get("contacts", [])]
    phones = [p for c in contacts for p in c.get("phones", [])]
    if with_contacts:
        assert contacts and phones and all(p.get("languages") for p in phones)
    else:
        assert contacts == []


async def test_the_export_ids_are_stable_and_unique(session: AsyncSession) -> None:
    first = await _export(session, with_contacts=True)
    organisations, _ = await transfer.load_everything(session, with_contacts=True)
    again = export_hsds(organisations, with_contacts=True)
    assert again == first

    ids = [v for o in first["contents"] for v in _ids(o)]
    assert len(ids) == len(set(ids)) > 52 * 2
    assert all(uuid.UUID(i) for i in ids)


def _ids(value: Any) -> list[str]:
    """Every `id` of an object and the objects inside it (a language is unique per phone)."""
    if isinstance(value, list):
        return [i for v in value for i in _ids(v)]
    if not isinstance(value, dict):
        return []
    own = [value["id"]] if isinstance(value.get("id"), str) else []
    return own + [i for k, v in value.items() if k != "x_integra" for i in _ids(v)]


def test_the_cli_writes_one_hsds_page(database: Database, tmp_path: Path) -> None:
    db = database.fresh_copy()
    imported = run_cli("registry", "import", str(SAMPLE), database_url=db, data_dir=tmp_path)
    assert imported.returncode == 0, imported.stderr
    result = run_cli("registry", "export", "--format", "hsds", database_url=db, data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    page = json.loads(result.stdout)
    assert _problems(_page_validator(), page) == []
    validator = _validator("organization.json")
    assert [o["name"] for o in page["contents"] if not validator.is_valid(o)] == []
