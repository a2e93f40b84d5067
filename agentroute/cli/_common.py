"""What every command shares: the `--db` option, opening the store, run-id prefixes, output."""

from __future__ import annotations

import json
import math
import os
import shlex
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn
from urllib.parse import unquote

import typer
from rich.console import Console

from agentroute.errors import ConfigurationError, RunNotFound, StoreError
from agentroute.stores import DEFAULT_STORE_URL

if TYPE_CHECKING:
    from agentroute.stores import TraceStore

__all__ = [
    "DEFAULT_DB",
    "MIN_PREFIX",
    "DbOption",
    "check_writable",
    "db_flag",
    "echo_json",
    "fail",
    "json_safe",
    "one_line",
    "opened_store",
    "resolve_run_id",
    "sqlite_file",
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


def json_safe(value: Any) -> Any:
    """`value` with every NaN or infinite float (in dicts, lists and tuples) replaced by `None`.

    JSON has no NaN or infinity; Python's `json` would write them as bare `NaN` / `Infinity`,
    which other parsers reject.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def echo_json(obj: Any, *, indent: int | None = None) -> None:
    """Write `obj` as JSON on standard output (one line unless `indent`).

    NaN and infinities become `null` (see `json_safe`), so the output is always valid JSON.
    """
    separators = (",", ": ") if indent else (",", ":")
    text = json.dumps(
        json_safe(obj), ensure_ascii=False, indent=indent, separators=separators, allow_nan=False
    )
    typer.echo(text)


def check_writable(path: Path, option: str) -> None:
    """Fail early, before any work, when `path` cannot be written as a file.

    Args:
        path: The file a command will write.
        option: The option that named it (e.g. `--out`), for the message.

    Raises:
        typer.Exit: `path` is a directory, its directory does not exist, or either is not
            writable (after printing one `error:` line).
    """
    directory = path.parent
    if path.is_dir():
        fail(f"{option} {path} is a directory; give a file path, e.g. {path / 'out.jsonl'}")
    if not directory.is_dir():
        fail(f"cannot write {option} {path}: the directory {directory} does not exist; create it")
    target = path if path.exists() else directory
    if not os.access(target, os.W_OK):
        fail(f"cannot write {option} {path}: {target} is not writable; choose another path")


def db_flag(url: str) -> str:
    """The `--db ...` to repeat in a suggested command (empty for the default store)."""
    return "" if url == DEFAULT_DB else f" --db {shlex.quote(url)}"


def sqlite_file(url: str) -> Path | None:
    """The database file a `sqlite:///path.db` URL names (`None` for other URLs and URIs)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in {"sqlite", "sqlite+pysqlite"} or not rest.startswith("/"):
        return None
    # As SQLAlchemy reads it: the part after the third slash, query dropped, %-escapes decoded.
    database = unquote(rest[1:].partition("?")[0])
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


@contextmanager
def opened_store(url: str, *, existing: bool = False) -> Iterator[TraceStore]:
    """Open the store at `url` with `open_store`, and close it (flushing) on the way out.

    Args:
        url: The store URL (`--db`).
        existing: The command reads a store that must already exist (`runs list`, `runs verify`,
            `pheromones show`, ...): a SQLite file that is not there is an error, not created
            empty (a typo in `--db` would otherwise report "0 runs").

    Raises:
        ConfigurationError: The URL is invalid, or `existing` and the SQLite file does not
            exist or holds no trace.
        MissingExtraError: The URL's driver is not installed (names the `pip install`).
        StoreError: The database cannot be opened.
    """
    from agentroute.stores import open_store

    path = sqlite_file(url) if existing else None
    if path is not None and not path.exists():
        msg = (
            f"no store at {url}: the file {str(path)!r} does not exist; check --db (or "
            "AGENTROUTE_DB), or record runs into it first, e.g. with "
            f"`agentroute demo{db_flag(url)}`"
        )
        raise ConfigurationError(msg)
    if path is not None:
        _check_trace_file(path, url)
    store = open_store(url)  # a missing driver is a MissingExtraError: one line in the CLI
    try:
        yield store
    finally:
        store.close()


def _check_trace_file(path: Path, url: str) -> None:
    """Refuse to read (and so create tables in) a SQLite file that holds no trace.

    Opening a store creates its tables; a read command pointed at an empty file or at another
    application's database would otherwise add nine tables to it and report "no runs".
    """
    import sqlite3

    check = "check --db (or AGENTROUTE_DB)"
    try:
        # The file exists (checked first), so connecting creates nothing; reading the schema
        # writes nothing.
        with closing(sqlite3.connect(path)) as db:
            rows = db.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()
        names = [str(r[0]) for r in rows]
    except sqlite3.OperationalError as exc:  # locked, a directory, no permission
        msg = f"cannot read {str(path)!r}: {exc}"
        raise StoreError(msg) from exc
    except sqlite3.DatabaseError as exc:
        msg = f"{str(path)!r} is not a SQLite database ({exc}); {check}"
        raise ConfigurationError(msg) from exc
    if any(n.startswith("agentroute_") for n in names):
        return
    if names:
        msg = (
            f"no agentroute trace in {url}: {str(path)!r} is a SQLite database of "
            f"{len(names)} other table(s), left untouched; {check}"
        )
    else:
        what = "an empty file" if path.stat().st_size == 0 else "a SQLite database with no tables"
        msg = (
            f"no agentroute trace in {url}: {str(path)!r} is {what}; {check}, or record runs "
            f"into it first, e.g. with `agentroute demo{db_flag(url)}`"
        )
    raise ConfigurationError(msg)


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
