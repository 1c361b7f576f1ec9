"""Response templates (常用语): common notes a dispatcher picks instead of typing, per category
group (top class code, `*` for every case), from an editable data file
(data/response_templates.csv: `group,text`)."""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

DEFAULT_FILE = Path(__file__).resolve().parent.parent / "data" / "response_templates.csv"


@lru_cache(maxsize=4)
def load(path: Path = DEFAULT_FILE) -> tuple[tuple[str, str], ...]:
    """(group, text) rows of the file, in file order; blank texts are skipped."""
    with path.open(encoding="utf-8", newline="") as f:
        return tuple(
            (row["group"].strip(), row["text"].strip()) for row in csv.DictReader(f) if row["text"].strip()
        )


def for_category(category: str, path: Path = DEFAULT_FILE) -> list[str]:
    """The texts offered for a case of this category: its top class's, then the general ones."""
    rows = load(path)
    top = category[:2]
    return [t for g, t in rows if g == top] + [t for g, t in rows if g == "*"]
