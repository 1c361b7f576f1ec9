"""The command line's one map from errors to what a user sees: `error: message` on stderr, the
details an error carries as `  ✗ …` lines before it, and an exit code; never a traceback.

Errors of the vocabulary (errors.py) map by their kind (EXIT_CODE_BY_KIND); besides them the
command stops with a message for the errors of its own surroundings a user can fix (OPERATIONAL:
the embedded cluster, the database URL, a missing file, a bad setting). docs/errors.md has the table.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer

from errors import KINDS, Refused, kind_of, message_of
from store.cluster import ClusterError
from store.engine import DatabaseError

# Every refusal stops the command with 1 (as every `error:` always has: scripts test for it); 2 is
# typer's own for a malformed command line, 3 `gridmap db status` for a cluster that is not running.
EXIT_CODE_BY_KIND: dict[type[Refused], int] = dict.fromkeys(KINDS, 1)
EXIT_OPERATIONAL = 1

# Not refusals of the vocabulary, yet a user can fix them: a message, not a traceback. ValueError:
# a setting or a data file (geo.settings.ConfigError, cases.categories.CategoryTableError).
OPERATIONAL: tuple[type[BaseException], ...] = (ClusterError, DatabaseError, FileNotFoundError, ValueError)

# What to do next, for errors whose message says what is wrong but not how to go on. By class name:
# importing geo.importer (GeoPandas) to name the class would slow every command.
HINTS = {"ImportRejected": "Fix the file (or use --repair for invalid polygons) and run the import again."}


def details(exc: BaseException) -> list[str]:
    """The lines an error carries besides its message: an import's errors, a plan's problems."""
    report = getattr(exc, "report", None)  # geo.importer.ImportRejected
    if report is not None:
        return list(report.errors)
    problems = getattr(exc, "problems", None)  # store.plans.PlanInvalid
    return [f"{p.kind}: {p.message}" for p in problems or ()]


def exit_code(exc: BaseException) -> int:
    """The exit code of an error the command stops on."""
    kind = kind_of(exc)
    return EXIT_CODE_BY_KIND[kind] if kind is not None else EXIT_OPERATIONAL


def refuse(exc: BaseException) -> NoReturn:
    """Stop the command for `exc`: its details, `error: message` (with a hint), its exit code."""
    for line in details(exc):
        typer.echo(f"  ✗ {line}", err=True)
    hint = HINTS.get(type(exc).__name__)
    message = message_of(exc) + (f". {hint}" if hint else "")
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(exit_code(exc))


@contextmanager
def refusals() -> Iterator[None]:
    """Around a command's work: the errors a user can act on end it through `refuse`."""
    try:
        yield
    except (Refused, *OPERATIONAL) as exc:
        refuse(exc)
