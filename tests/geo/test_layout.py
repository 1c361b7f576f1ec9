"""geo/ is the spatial core: it reads, converts, validates and decides, and never reaches the store,
the use cases, the web or the command line (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

GEO = Path(__file__).resolve().parents[2] / "geo"
OUTSIDE = ("store", "services", "api", "cli", "maps")


def imported_packages(path: Path) -> set[str]:
    """The top-level packages a module imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_no_geo_module_imports_the_store_services_web_or_cli():
    modules = sorted(GEO.glob("*.py"))
    assert len(modules) > 20  # the package is where this test thinks it is
    reaching = {p.name: sorted(imported_packages(p) & set(OUTSIDE)) for p in modules}
    assert {name: found for name, found in reaching.items() if found} == {}
