"""docs/security.md's role table is the code's: a permission granted or taken away fails this."""

from __future__ import annotations

from pathlib import Path

from access.roles import ROLE_PERMISSIONS, Permission, Role

DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"


def documented_permissions() -> dict[str, set[str]]:
    """role → permissions ticked in the doc's role table."""
    lines = [line for line in DOC.read_text(encoding="utf-8").splitlines() if line.startswith("| ")]
    header = next(line for line in lines if line.startswith("| role | read_units"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    table: dict[str, set[str]] = {}
    for line in lines[lines.index(header) + 1 :]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] not in {r.value for r in Role}:
            break
        table[cells[0]] = {col for col, cell in zip(columns[1:], cells[1:], strict=True) if cell == "✓"}
    return table


def test_the_documented_role_table_is_the_code_s():
    expected = {role.value: {p.value for p in perms} for role, perms in ROLE_PERMISSIONS.items()}
    assert documented_permissions() == expected
    assert set(documented_permissions()["admin"]) == {p.value for p in Permission}
