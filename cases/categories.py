"""The two-level case category table (大类/小类) and its time limits per lifecycle stage.

Loaded from a CSV file (data/categories.csv) with columns
code,name,name_en,parent,verify,file,dispatch,accept,handle,check,close,revisit:
a top class has a 2-digit code, no parent and a limit for every stage; a subclass has a 4-digit
code starting with its parent's and may leave a stage blank to inherit its top class's limit.
Only subclasses are assigned to cases.

>>> table = CategoryTable.default()
>>> str(table.limit("0109", "handle"))
'15d'
>>> table.get("0109").parent
'01'
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType

from cases.worktime import TimeLimit, read_csv_rows
from errors import Invalid
from geo.settings import PROJECT_DIR

DEFAULT_CATEGORY_FILE = PROJECT_DIR / "data" / "categories.csv"

# The clocks of the lifecycle in order: reported→verified (核实), filed (立案), dispatched (派遣),
# accepted (签收), accepted→handled (处置), checked on site (核查), closed (结案), revisited (回访).
STAGES: tuple[str, ...] = ("verify", "file", "dispatch", "accept", "handle", "check", "close", "revisit")

TOP_CODE = re.compile(r"\d{2}")
SUB_CODE = re.compile(r"\d{4}")
# name_en is optional.
REQUIRED_COLUMNS = ("code", "name", "parent", *STAGES)


class UnknownCategory(Invalid, KeyError):
    """A category code that is not in the table."""

    def __str__(self) -> str:
        # KeyError would print the message in quotes.
        return str(self.args[0])


class CategoryTableError(ValueError):
    """A category table file that cannot be used."""


@dataclass(frozen=True)
class Category:
    """One row of the table, with every stage's limit resolved (inherited ones included)."""

    code: str
    name: str
    name_en: str
    parent: str | None
    limits: Mapping[str, TimeLimit] = field(hash=False)

    @property
    def is_top_class(self) -> bool:
        """Whether this is a top class (大类), which cases cannot be assigned to."""
        return self.parent is None


class CategoryTable:
    """The categories in file order, looked up by code."""

    def __init__(self, categories: list[Category]) -> None:
        self._by_code = {category.code: category for category in categories}

    @classmethod
    def load(cls, path: Path) -> CategoryTable:
        """Read and check a category CSV file; errors name the file and line."""
        rows = list(read_csv_rows(Path(path), required=REQUIRED_COLUMNS))
        seen: dict[str, str] = {}
        for where, row in rows:
            code = row["code"]
            if code in seen:
                raise CategoryTableError(f"{where}: duplicate code {code} (first at {seen[code]})")
            seen[code] = where
        tops = {row["code"]: _top_class(where, row) for where, row in rows if TOP_CODE.fullmatch(row["code"])}
        categories = []
        for where, row in rows:
            if row["code"] in tops:
                categories.append(tops[row["code"]])
            else:
                categories.append(_subclass(where, row, tops))
        return cls(categories)

    @classmethod
    def default(cls) -> CategoryTable:
        """The table shipped in data/categories.csv (loaded once)."""
        return _default_table()

    def get(self, code: str) -> Category:
        """The category with this code, top class or subclass; UnknownCategory if there is none."""
        try:
            return self._by_code[code]
        except KeyError:
            raise UnknownCategory(self._unknown_message(code)) from None

    def is_assignable(self, code: str) -> bool:
        """Whether a case can be given this code: an existing subclass (小类)."""
        category = self._by_code.get(code)
        return category is not None and not category.is_top_class

    def top_classes(self) -> list[Category]:
        """The top classes (大类) in file order."""
        return [category for category in self._by_code.values() if category.is_top_class]

    def children(self, code: str) -> list[Category]:
        """The subclasses of a top class in file order (none for a subclass)."""
        self.get(code)
        return [category for category in self._by_code.values() if category.parent == code]

    def limit(self, code: str, stage: str) -> TimeLimit:
        """The time limit of a category for one lifecycle stage."""
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; stages are {', '.join(STAGES)}")
        return self.get(code).limits[stage]

    def __iter__(self) -> Iterator[Category]:
        return iter(self._by_code.values())

    def __len__(self) -> int:
        return len(self._by_code)

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def _unknown_message(self, code: str) -> str:
        parent = self._by_code.get(str(code)[:2])
        if SUB_CODE.fullmatch(str(code)) and parent is not None:
            codes = [child.code for child in self.children(parent.code)]
            return f"unknown category {code!r}: {parent.code} {parent.name} has subclasses {', '.join(codes)}"
        tops = ", ".join(f"{top.code} {top.name}" for top in self.top_classes())
        return (
            f"unknown category {code!r}: codes are a 2-digit top class or a 4-digit subclass "
            f"starting with it; top classes are {tops}"
        )


@lru_cache(maxsize=1)
def _default_table() -> CategoryTable:
    return CategoryTable.load(DEFAULT_CATEGORY_FILE)


def _top_class(where: str, row: dict[str, str]) -> Category:
    if row["parent"]:
        raise CategoryTableError(f"{where}: top class {row['code']} must not have a parent")
    missing = [stage for stage in STAGES if not row[stage]]
    if missing:
        raise CategoryTableError(
            f"{where}: top class {row['code']} must define every stage; missing {', '.join(missing)}"
        )
    limits = {stage: _limit(where, row, stage) for stage in STAGES}
    return _category(where, row, parent=None, limits=limits)


def _subclass(where: str, row: dict[str, str], tops: dict[str, Category]) -> Category:
    code, parent = row["code"], row["parent"]
    if not SUB_CODE.fullmatch(code):
        raise CategoryTableError(
            f"{where}: bad code {code!r}: a top class has 2 digits, a subclass 4 starting with its parent's"
        )
    if parent != code[:2]:
        raise CategoryTableError(f"{where}: subclass {code} must have parent {code[:2]}, not {parent!r}")
    if parent not in tops:
        raise CategoryTableError(f"{where}: subclass {code} has parent {parent}, which is not in the table")
    inherited = tops[parent].limits
    limits = {stage: _limit(where, row, stage) if row[stage] else inherited[stage] for stage in STAGES}
    return _category(where, row, parent=parent, limits=limits)


def _category(
    where: str, row: dict[str, str], *, parent: str | None, limits: dict[str, TimeLimit]
) -> Category:
    if not row["name"]:
        raise CategoryTableError(f"{where}: category {row['code']} has no name")
    return Category(
        code=row["code"],
        name=row["name"],
        name_en=row.get("name_en", ""),
        parent=parent,
        limits=MappingProxyType(limits),
    )


def _limit(where: str, row: dict[str, str], stage: str) -> TimeLimit:
    try:
        return TimeLimit.parse(row[stage])
    except ValueError as error:
        raise CategoryTableError(f"{where}: category {row['code']}, stage {stage}: {error}") from None
