"""`agentroute pheromones ...`: inspect, compare, export and roll back ant-colony tables.

```text
agentroute pheromones keys                          # colony keys in the store
agentroute pheromones show [--key K] [--task T] [--version V] [--json]
agentroute pheromones versions [--key K]
agentroute pheromones diff OLD [NEW] [--key K]
agentroute pheromones export --out DIR [--key K] [--task T] [--version V]   # PNG per task
agentroute pheromones rollback VERSION [--key K]
```

`--key` defaults to the store's only colony key (colonies register their key when compiled).
"""

from __future__ import annotations

import math
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from agentroute.cli._common import (
    DEFAULT_DB,
    DbOption,
    db_flag,
    echo_json,
    opened_store,
    stdout,
)
from agentroute.errors import ConfigurationError, MissingExtraError, StoreError

if TYPE_CHECKING:
    import numpy as np

    from agentroute.routing.colony import PheromoneBook, PheromoneState
    from agentroute.stores import TraceStore

__all__ = ["heatmap_table", "pheromones_app"]

pheromones_app = typer.Typer(
    name="pheromones",
    help="Inspect, compare, export and roll back the pheromone tables of ant-colony routers.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)

KeyOption = Annotated[
    str | None,
    typer.Option("--key", help="Colony state key (default: the store's only colony key)."),
]
TaskOption = Annotated[str | None, typer.Option("--task", help="Only this task type.")]
VersionOption = Annotated[
    int | None, typer.Option("--version", min=1, help="A stored version (default: latest).")
]
RawOption = Annotated[
    bool,
    typer.Option(
        "--raw",
        help="The tables as stored, not as decisions use them (backed off to the all-task table).",
    ),
]

_SHADES = [
    "grey15",
    "grey30",
    "dark_green",
    "green4",
    "green3",
    "chartreuse3",
    "yellow3",
    "orange3",
    "red3",
]


def _book(store: TraceStore, key: str | None) -> PheromoneBook:
    from agentroute.routing.colony import PheromoneBook

    if key is None:
        keys = PheromoneBook.known_keys(store)
        if not keys:
            msg = (
                "no ant-colony tables in this store; compile a Router with AntColony against it, "
                "or pass --key"
            )
            raise ConfigurationError(msg)
        if len(keys) > 1:
            msg = f"the store holds several colonies; pass --key (one of {', '.join(keys)})"
            raise ConfigurationError(msg)
        key = keys[0]
    return PheromoneBook(store, key)


def _load(book: PheromoneBook, version: int | None, db: str = DEFAULT_DB) -> PheromoneState:
    state = book.load(version)
    if state is None:
        which = f"version {version} of " if version else ""
        msg = (
            f"no {which}pheromone state {book.key!r} in this store; list its versions with "
            f"`agentroute pheromones versions{db_flag(db)} --key {shlex.quote(book.key)}`"
        )
        raise StoreError(msg)
    return state


def _tasks(state: PheromoneState, task: str | None) -> list[str]:
    if task is None:
        return list(state.tasks)
    if task not in state.tasks:
        from agentroute.errors import did_you_mean

        msg = f"no task {task!r} in the tables{did_you_mean(task, list(state.tasks))}"
        raise ConfigurationError(msg)
    return [task]


def _rows(state: PheromoneState, raw: bool) -> tuple[np.ndarray, str]:
    if raw or "tau" not in state.meta:
        return state.tau, "τ"
    return state.effective(), "effective τ"


def heatmap_table(state: PheromoneState, task: str, *, raw: bool = False) -> Table:
    """One task's τ as a source × destination table, each cell shaded by its value.

    By default the table decisions use (backed off to the all-task table, clipped); `raw` shows
    the task's stored table.
    """
    i = state.tasks.index(task)
    rows, what = _rows(state, raw)
    sources = sorted({e[0] for e in state.edges}, key=lambda s: (s != "__start__", s))
    dests = sorted({e[1] for e in state.edges})
    values = {e: float(v) for e, v in zip(state.edges, rows[i], strict=True)}
    top = max(values.values(), default=1.0) or 1.0
    table = Table(title=f"{what} for task {task!r} (version {state.version})", title_justify="left")
    table.add_column("from \\ to")
    for d in dests:
        table.add_column(d, justify="right")
    for src in sources:
        cells: list[Text | str] = [src]
        for d in dests:
            v = values.get((src, d))
            if v is None:
                cells.append(Text("·", style="dim"))
                continue
            shade = _SHADES[min(len(_SHADES) - 1, int(v / top * (len(_SHADES) - 1)))]
            cells.append(Text(f"{v:.3g}", style=f"bold white on {shade}"))
        table.add_row(*cells)
    return table


@pheromones_app.command("keys")
def keys(db: DbOption = DEFAULT_DB) -> None:
    """List the colony keys recorded in the store."""
    from agentroute.routing.colony import PheromoneBook

    with opened_store(db, existing=True) as store:
        found = PheromoneBook.known_keys(store)
    for key in found:
        typer.echo(key)
    if not found:
        typer.echo("no ant-colony tables in this store")


@pheromones_app.command("show")
def show(
    *,
    db: DbOption = DEFAULT_DB,
    key: KeyOption = None,
    task: TaskOption = None,
    version: VersionOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    raw: RawOption = False,
) -> None:
    """Print the pheromone tables as heatmap-style tables, one per task type.

    The tables are the ones decisions use: a task table with little evidence of its own is
    backed off to the all-task table. `--raw` shows the tables as stored.
    """
    with opened_store(db, existing=True) as store:
        book = _book(store, key)
        state = _load(book, version, db)
    names = _tasks(state, task)
    effective = not raw and "tau" in state.meta
    if as_json:
        echo_json(
            {
                "key": book.key,
                "version": state.version,
                "effective": effective,
                "tables": {t: state.table(t, effective=effective) for t in names},
                "meta": {k: v for k, v in state.meta.items() if k != "last_updates"},
            },
            indent=2,
        )
        return
    console = stdout()
    for t in names:
        console.print(heatmap_table(state, t, raw=raw))
    meta = state.meta
    console.print(
        f"{book.key} v{state.version}: {meta.get('learned', 0)} run(s) learned, "
        f"{meta.get('accepted', 0)} accepted",
        style="dim",
        markup=False,
    )


@pheromones_app.command("versions")
def versions(db: DbOption = DEFAULT_DB, key: KeyOption = None) -> None:
    """List every stored version (snapshot) of the tables."""
    import datetime as dt

    with opened_store(db, existing=True) as store:
        book = _book(store, key)
        rows = book.versions()
    table = Table(title=book.key, title_justify="left")
    for col in ("version", "written", "learned", "accepted", "note"):
        table.add_column(col)
    for r in rows:
        when = dt.datetime.fromtimestamp(r["created_at"], tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(str(r["version"]), when, str(r["learned"]), str(r["accepted"]), r["note"])
    stdout().print(table)


@pheromones_app.command("diff")
def diff(
    old: Annotated[int, typer.Argument(min=1, help="The older version.")],
    new: Annotated[
        int | None, typer.Argument(min=1, help="The newer version (default latest).")
    ] = None,
    db: DbOption = DEFAULT_DB,
    key: KeyOption = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Largest changes shown.")] = 20,
) -> None:
    """Show the largest τ changes between two versions."""
    with opened_store(db, existing=True) as store:
        d = _book(store, key).diff(old, new)
    table = Table(title=f"τ changes v{d.old_version} → v{d.new_version}", title_justify="left")
    for col in ("task", "edge", "old", "new", "change"):
        table.add_column(col)
    for t, e, a, b in d.largest(limit):
        change = "added" if math.isnan(a) else "removed" if math.isnan(b) else f"{b - a:+.4g}"
        table.add_row(t, e, f"{a:.4g}", f"{b:.4g}", change)
    stdout().print(table)


@pheromones_app.command("rollback")
def rollback(
    version: Annotated[int, typer.Argument(min=1, help="The version to restore.")],
    db: DbOption = DEFAULT_DB,
    key: KeyOption = None,
) -> None:
    """Restore an old version by writing it as the newest one (history is kept)."""
    with opened_store(db, existing=True) as store:
        book = _book(store, key)
        _load(book, version, db)  # a missing version names the command that lists them
        state = book.rollback(version)
    typer.echo(f"restored version {version} as version {state.version}")


@pheromones_app.command("export")
def export(
    *,
    out: Annotated[Path, typer.Option("--out", help="Directory for the PNG files.")],
    db: DbOption = DEFAULT_DB,
    key: KeyOption = None,
    task: TaskOption = None,
    version: VersionOption = None,
    raw: RawOption = False,
) -> None:
    """Write one PNG heatmap per task type (needs matplotlib): the tables decisions use.

    `--raw` exports the tables as stored instead.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        msg = "pheromones export needs matplotlib: pip install 'agentroute[plots]'"
        raise MissingExtraError(msg) from exc
    import numpy as np

    with opened_store(db, existing=True) as store:
        book = _book(store, key)
        state = _load(book, version, db)
    out.mkdir(parents=True, exist_ok=True)
    sources = sorted({e[0] for e in state.edges}, key=lambda s: (s != "__start__", s))
    dests = sorted({e[1] for e in state.edges})
    rows, what = _rows(state, raw)
    for t in _tasks(state, task):
        i = state.tasks.index(t)
        grid = np.full((len(sources), len(dests)), np.nan)
        for e, v in zip(state.edges, rows[i], strict=True):
            grid[sources.index(e[0]), dests.index(e[1])] = v
        fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(dests), 1.2 + 0.6 * len(sources)))
        image = ax.imshow(grid, cmap="viridis", aspect="auto")
        ax.set_xticks(range(len(dests)), dests, rotation=45, ha="right")
        ax.set_yticks(range(len(sources)), sources)
        ax.set_title(f"{book.key} v{state.version}: {what} for {t}")
        fig.colorbar(image, ax=ax)
        fig.tight_layout()
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in t)
        path = out / f"pheromones_{safe}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        typer.echo(str(path))
