"""Imports run one way: models/errors -> engine -> client -> delivery -> web -> cli. Checked from the source,
so a forbidden import fails here even on a code path no other test runs."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "zsched"

FORBIDDEN = {
    "engine": ("starlette", "uvicorn", "httpx", "zsched.client", "zsched.delivery", "zsched.web", "zsched.cli"),
    "delivery": ("starlette", "uvicorn", "zsched.web", "zsched.cli"),
    "web": ("zsched.cli",),
}
"""Subpackage -> module prefixes none of its modules may import."""


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports, relative imports resolved to absolute names."""
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


@pytest.mark.parametrize("subpackage", sorted(FORBIDDEN))
def test_no_module_imports_against_the_flow(subpackage: str) -> None:
    for path in sorted((PACKAGE / subpackage).rglob("*.py")):
        bad = sorted(m for m in imports_of(path) if any(m == f or m.startswith(f + ".") for f in FORBIDDEN[subpackage]))
        assert not bad, f"{path.relative_to(PACKAGE.parent)} imports {bad}"


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    """The positive control: a relative import of the web package from the engine is caught."""
    module = PACKAGE / "engine" / "_probe_boundary.py"
    module.write_text("from ..web import app\n")
    try:
        assert "zsched.web.app" in imports_of(module)
    finally:
        module.unlink()


def test_importing_the_library_loads_no_web_framework() -> None:
    code = "import sys, zsched; print(sorted(m for m in sys.modules if m.split('.')[0] in ('starlette', 'uvicorn')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
