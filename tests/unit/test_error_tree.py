"""Every exception the project defines sits in core.errors' tree: retryable or fatal, and drawn."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

from core import errors
from core.errors import FatalError, LineageError, RetryableError

PACKAGES = ("core", "schemas", "producers", "stream_processor", "sinks", "lineage")


def project_exceptions() -> list[type[BaseException]]:
    """Every exception class defined in a module of the project's packages."""
    found: list[type[BaseException]] = []
    for package in PACKAGES:
        root = importlib.import_module(package)
        names = [package] + [info.name for info in
                             pkgutil.walk_packages(root.__path__, f"{package}.")
                             if not info.name.endswith("__main__")]
        for name in names:
            module = importlib.import_module(name)
            found += [cls for _, cls in inspect.getmembers(module, inspect.isclass)
                      if issubclass(cls, BaseException) and cls.__module__ == name]
    return found


def test_the_search_finds_the_exceptions_defined_outside_core() -> None:
    modules = {cls.__module__ for cls in project_exceptions()}
    assert "core.errors" in modules and "schemas.codec" in modules  # _Unsupported


@pytest.mark.parametrize("cls", project_exceptions(), ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_each_exception_is_retryable_or_fatal(cls: type[BaseException]) -> None:
    if cls in (LineageError, RetryableError, FatalError):
        return
    assert issubclass(cls, RetryableError | FatalError), (
        f"{cls.__module__}.{cls.__name__} must derive from core.errors.RetryableError or "
        "FatalError")


def test_every_public_exception_lives_in_core_errors_and_is_drawn_in_its_tree() -> None:
    doc = errors.__doc__ or ""
    public = [cls for cls in project_exceptions() if not cls.__name__.startswith("_")]
    assert {cls.__module__ for cls in public} == {"core.errors"}
    drawn = {line.split("── ")[-1].split()[0] for line in doc.splitlines() if "── " in line}
    assert sorted(cls.__name__ for cls in public if cls is not LineageError) == sorted(drawn)
