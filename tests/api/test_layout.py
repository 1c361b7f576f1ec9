"""Routes, pages and the command call use cases (services/) or pure functions, never the store:
a request parses input, calls one service function, renders its answer (docs/architecture.md).

The few modules that may import the store are listed below with the reason; anything else that
reaches for `store` fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Wiring, not use cases: the modules that may import `store`, and why.
ALLOWED = {
    "api/app.py": "the engines and sessions, LISTEN/NOTIFY, standby reads and the locate cache's wiring",
    "api/access.py": "THE permission check: tokens, throttles and scopes read on every request",
    "api/live.py": "the live feed's plumbing (lead, issue 13)",
    "api/live_feed.py": "the live feed's plumbing (lead, issue 13)",
    "api/read_your_writes.py": "which server a read goes to: the WAL position a client wrote at (HA)",
    "api/routes/health.py": "the migration revision the database is at",
    "api/routes/locate.py": "/locate's answer from the process's mapped copy or PostGIS (its hot path)",
    "cli/common.py": "the command's engine, sessions and migrations",
    "cli/main.py": "the engine `serve` checks before it starts",
    "cli/db.py": "`gridmap db`: the embedded cluster itself",
    "cli/ha.py": "`gridmap ha`: the local HA cluster itself",
    "cli/errors.py": "the cluster's and the engine's errors, mapped to the command's messages",
}


def imported(path: Path) -> list[str]:
    """The modules a module imports, at the top or inside a function."""
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            module = node.module or ""
            names += [module] + [f"{module}.{a.name}" for a in node.names]
    return names


def imports_store(path: Path) -> bool:
    """Whether a module imports `store` (or one of its modules)."""
    return any(name.split(".")[0] == "store" for name in imported(path))


def modules() -> list[str]:
    """Every Python module of the API (routes, pages and the rest) and of the command."""
    found = [*ROOT.glob("api/**/*.py"), *ROOT.glob("cli/*.py")]
    return sorted(str(p.relative_to(ROOT)) for p in found if "static" not in p.parts)


def test_routes_pages_and_the_command_reach_the_store_only_through_services():
    found = modules()
    assert "api/routes/cases.py" in found and "api/pages/desk.py" in found and "cli/coverage.py" in found
    reaching = [m for m in found if m not in ALLOWED and imports_store(ROOT / m)]
    assert reaching == []


def test_route_and_page_modules_share_no_code_with_each_other():
    """What two routes need (a body, a parameter, a dependency, a header) lives beside them in api/,
    not in one route module that the other imports (issue 18: Open311 took seven names from cases).
    The pages' template renderer (api/pages/templates.py) is theirs to share."""
    routes = [m for m in modules() if m.startswith(("api/routes/", "api/pages/"))]
    reaching = {
        m: sorted(
            n
            for n in imported(ROOT / m)
            if n.startswith(("api.routes.", "api.pages.")) and not n.startswith("api.pages.templates")
        )
        for m in routes
    }
    assert {m: names for m, names in reaching.items() if names} == {}


def test_the_check_sees_an_import_of_the_store_wherever_it_is(tmp_path):
    samples = {
        "top.py": "from store import cases\n",
        "module.py": "import store.units as units\n",
        "inside.py": "def f():\n    from store.cases import case_detail\n",
    }
    for name, source in samples.items():
        (tmp_path / name).write_text(source, encoding="utf-8")
        assert imports_store(tmp_path / name), name
    clean = tmp_path / "clean.py"
    clean.write_text("from services import case_reads\nimport storefront\n", encoding="utf-8")
    assert not imports_store(clean)
