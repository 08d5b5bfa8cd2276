"""What every command module shares: the one-line error handler for the user's mistakes.

Errors the user can act on are printed as one line with a hint, never as a stack trace::

    $ lineage stack up
    kafka: started (pid 4242), waiting for it to answer
    ...
    $ LINEAGE_STACK__KAFKA_PORT=abc lineage stack up
    error: LINEAGE_STACK__KAFKA_PORT: Input should be a valid integer (got 'abc')

>>> from core.errors import LineageError
>>> @friendly_errors
... def broken() -> None:
...     raise LineageError("no such topic", hint="create it first")
>>> try:
...     broken()
... except typer.Exit as done:
...     print("exit code", done.exit_code)
exit code 1
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from pydantic import ValidationError

from core.errors import LineageError
from core.settings import ENV_PREFIX

P = ParamSpec("P")
R = TypeVar("R")


def friendly_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn the project's errors and invalid settings into a one-line message and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except LineageError as exc:
            typer.echo(f"error: {exc.cause}", err=True)
            if exc.hint:
                typer.echo(f"hint: {exc.hint}", err=True)
        except ValidationError as exc:
            for err in exc.errors():
                name = ENV_PREFIX + "__".join(str(part) for part in err["loc"]).upper()
                typer.echo(f"error: {name}: {err['msg']} (got {err['input']!r})", err=True)
            typer.echo("hint: fix the environment variable or .env entry named above", err=True)
        raise typer.Exit(1)

    return wrapper
