"""The examples in the docstrings of the pure packages (geo, cases, access, errors.py) are run."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import access
import cases
import errors
import geo


def _modules() -> list[str]:
    names = [errors.__name__]
    for package in (geo, cases, access):
        names += [m.name for m in pkgutil.walk_packages(package.__path__, f"{package.__name__}.")]
    return sorted(names)


MODULES = _modules()


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_hold(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} fail (output above)"


def test_there_are_examples_to_run():
    # Collection that finds nothing would pass the test above for every module.
    attempted = sum(doctest.testmod(importlib.import_module(n), verbose=False).attempted for n in MODULES)
    assert attempted >= 10
