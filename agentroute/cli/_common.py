"""What every command shares: the `--db` option, opening the store, run-id prefixes, output."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console

from agentroute.errors import ConfigurationError, RunNotFound
from agentroute.stores import DEFAULT_STORE_URL

if TYPE_CHECKING:
    from agentroute.stores import TraceStore

__all__ = [
    "DEFAULT_DB",
    "MIN_PREFIX",
    "DbOption",
    "db_flag",
    "echo_json",
    "fail",
    "one_line",
    "opened_store",
    "resolve_run_id",
    "stderr",
    "stdout",
]

DEFAULT_DB = DEFAULT_STORE_URL
"""`--db` when neither the option nor `AGENTROUTE_DB` is given."""

MIN_PREFIX = 6
"""Shortest run-id prefix accepted in place of a full id."""

DbOption = Annotated[
    str,
    typer.Option(
        "--db",
        envvar="AGENTROUTE_DB",
        metavar="URL",
        help="Trace store: sqlite:///path.db, postgresql://user@host/db or memory://.",
    ),
]


def stdout() -> Console:
    """A console on standard output (created per call: test runners swap `sys.stdout`)."""
    return Console(highlight=False)


def stderr() -> Console:
    """A console on standard error, for errors, warnings and progress."""
    return Console(stderr=True, highlight=False)


def one_line(text: str) -> str:
    """`text` with every run of whitespace (newlines included) collapsed to one space."""
    return " ".join(text.split())


def fail(message: str) -> NoReturn:
    """Print `error: message` in red on standard error and exit with status 1."""
    stderr().print(f"error: {one_line(message)}", style="red", markup=False, soft_wrap=True)
    raise typer.Exit(1)


def echo_json(obj: Any, *, indent: int | None = None) -> None:
    """Write `obj` as JSON on standard output (one line unless `indent`)."""
    separators = (",", ": ") if indent else (",", ":")
    typer.echo(json.dumps(obj, ensure_ascii=False, indent=indent, separators=separators))


def db_flag(url: str) -> str:
    """The `--db ...` to repeat in a suggested command (empty for the default store)."""
    return "" if url == DEFAULT_DB else f" --db {shlex.quote(url)}"


@contextmanager
def opened_store(url: str) -> Iterator[TraceStore]:
    """Open the store at `url` with `open_store`, and close it (flushing) on the way out.

    Raises:
        ConfigurationError: The URL is invalid, or its driver is not installed.
        StoreError: The database cannot be opened.
    """
    from agentroute.stores import open_store

    try:
        store = open_store(url)
    except ImportError as exc:  # a missing extra: the message names the pip install
        raise ConfigurationError(str(exc)) from exc
    try:
        yield store
    finally:
        store.close()


def resolve_run_id(store: TraceStore, ref: str, url: str) -> str:
    """Return the run id `ref` names: an id in the store, or a unique prefix of one.

    Raises:
        RunNotFound: No such run, the prefix is ambiguous (the candidates are listed), or it
            is shorter than `MIN_PREFIX` characters.
    """
    ids = store.run_ids()
    if ref in ids:
        return ref
    matches = [run_id for run_id in ids if run_id.startswith(ref)] if ref else []
    hint = f"(list ids with `agentroute runs list{db_flag(url)}`)"
    if not matches:
        msg = f"no run {ref!r} in {url} {hint}"
        raise RunNotFound(msg)
    if len(ref) < MIN_PREFIX:
        msg = (
            f"run id prefix {ref!r} is too short: give at least {MIN_PREFIX} characters of the "
            f"run id {hint}"
        )
        raise RunNotFound(msg)
    if len(matches) > 1:
        msg = (
            f"run id prefix {ref!r} is ambiguous in {url}: it matches {_listing(matches)}; "
            "give more characters"
        )
        raise RunNotFound(msg)
    return matches[0]


def _listing(ids: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")
