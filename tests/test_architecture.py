"""The structure the layer contracts do not see: no source file grows past what one person can
hold in mind, and no package reaches for another's private names. (The layers themselves and
the absence of import cycles are checked by `lint-imports`, configured in pyproject.toml.)"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("node", "registry", "practices", "federation")
MAX_LINES = 600


def sources() -> list[Path]:
    found = [p for pkg in (*PACKAGES, "tests") for p in (ROOT / pkg).rglob("*.py")]
    return [p for p in found if "alembic" not in p.parts and "__pycache__" not in p.parts]


def test_no_source_file_is_longer_than_600_lines() -> None:
    files = sources()
    assert len(files) > 50, "the source tree was not found"
    long = {
        str(p.relative_to(ROOT)): n
        for p in files
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}, f"split these files: {long}"


def private_imports(path: Path) -> list[str]:
    """`from other_package... import _name` in ``path``, where other_package is another of ours."""
    own = path.relative_to(ROOT).parts[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.ImportFrom) or not node.module:
            continue
        top = node.module.split(".")[0]
        if top in PACKAGES and top != own:
            found += [
                f"{path.relative_to(ROOT)}:{node.lineno}: {node.module}.{alias.name}"
                for alias in node.names
                if alias.name.startswith("_")
            ]
    return found


def test_no_package_imports_another_packages_private_names() -> None:
    found = [hit for path in sources() for hit in private_imports(path)]
    assert found == [], "\n".join(found)


def test_the_private_import_check_sees_one(tmp_path: Path) -> None:
    planted = ROOT / "tests" / "_planted_for_the_check.py"
    try:
        planted.write_text("from federation.feed import _hidden\n", encoding="utf-8")
        assert private_imports(planted) == [
            "tests/_planted_for_the_check.py:1: federation.feed._hidden"
        ]
    finally:
        planted.unlink()
