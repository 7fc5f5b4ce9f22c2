"""The dependency rule: imaging/ and cohorts/ are pure cores that know nothing of the service."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "imaging": {"app", "cohorts", "fastapi", "starlette", "sqlalchemy", "pydantic", "alembic"},
    "cohorts": {"app", "imaging", "fastapi", "starlette", "sqlalchemy", "pydantic", "alembic"},
}


def imported_top_level_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_forbidden_import_statements(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_top_level_modules(path) & FORBIDDEN[package])
        for path in (ROOT / package).rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_importing_the_core_loads_no_service_module(package: str) -> None:
    """Also catches indirect imports (a core module importing a helper that imports app)."""
    code = (
        f"import sys, {package}, pkgutil, importlib\n"
        f"for m in pkgutil.walk_packages({package}.__path__, '{package}.'):\n"
        "    importlib.import_module(m.name)\n"
        "print(' '.join(sorted({n.split('.')[0] for n in sys.modules})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    loaded = set(result.stdout.split())
    assert loaded & FORBIDDEN[package] == set()


def test_the_checker_notices_a_forbidden_import(tmp_path: Path) -> None:
    sample = tmp_path / "bad.py"
    sample.write_text("from app.models import Study\nimport sqlalchemy.orm\nfrom . import x\n")
    assert imported_top_level_modules(sample) == {"app", "sqlalchemy"}
