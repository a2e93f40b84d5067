"""`agentroute runs ...`: list, show, verify, replay, export and rate recorded runs."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import sys
import typing
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO

import typer
from rich.text import Text

from agentroute.cli._common import (
    DEFAULT_DB,
    DbOption,
    echo_json,
    fail,
    opened_store,
    resolve_run_id,
    stderr,
    stdout,
)
from agentroute.cli._render import (
    replay_table,
    run_tree,
    runs_table,
    status_text,
    truncate,
    verify_table,
)
from agentroute.errors import ConfigurationError, ModelBadRequest
from agentroute.stores import RunStatus

if TYPE_CHECKING:
    from agentroute import ReplayReport
    from agentroute.models import ModelRequest, ModelResponse
    from agentroute.registry import Registry
    from agentroute.runtime import Router
    from agentroute.stores import TraceStore

__all__ = ["runs_app"]

runs_app = typer.Typer(
    name="runs",
    help="List, show, verify, replay, export and rate recorded runs.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)

_STATUSES = typing.get_args(RunStatus)
_PROGRESS_ABOVE = 50
"""Runs exported to a file above which a progress bar is shown on standard error."""

RunArg = Annotated[
    str, typer.Argument(metavar="RUN", help="A run id, or a unique prefix of one (6+ characters).")
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a rich view.")]


@runs_app.command("list")
def list_runs(
    db: DbOption = DEFAULT_DB,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Most runs to list.")] = 20,
    status: Annotated[
        str | None,
        typer.Option(
            "--status", metavar="STATUS", help=f"Only runs that ended so: {', '.join(_STATUSES)}."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """List recorded runs, newest first."""
    if status is not None and status not in _STATUSES:
        msg = f"{status!r} is not a run status; use one of {', '.join(_STATUSES)}"
        raise typer.BadParameter(msg, param_hint="--status")
    with opened_store(db, existing=True) as store:
        runs = store.list_runs(limit=limit, status=status)
    if as_json:
        echo_json([r.model_dump(mode="json") for r in runs], indent=2)
        return
    console = stdout()
    if not runs:
        which = f" with status {status}" if status else ""
        console.print(f"no runs{which} in {db} — record some with `agentroute demo`", markup=False)
        return
    console.print(runs_table(runs))
    console.print(f"{len(runs)} run(s) from {db}", style="dim", markup=False, soft_wrap=True)


@runs_app.command("show")
def show(run: RunArg, db: DbOption = DEFAULT_DB, as_json: JsonFlag = False) -> None:
    """Show one run as a tree of its decisions, model calls and outputs.

    Every decision with its strategy, reason and candidates (with scores), every model call
    and agent output, then the end of the run and its feedback.
    """
    with opened_store(db, existing=True) as store:
        trace = store.get_run(resolve_run_id(store, run, db))
    if as_json:
        echo_json([r.model_dump(mode="json") for r in trace.records], indent=2)
        return
    stdout().print(run_tree(trace))


@runs_app.command("verify")
def verify(
    run: Annotated[
        str | None,
        typer.Argument(metavar="[RUN]", help="A run id or prefix; default: every run."),
    ] = None,
    db: DbOption = DEFAULT_DB,
) -> None:
    """Check the hash chain of one run, or of every run.

    An edited, deleted or reordered record breaks the chain. Exits with status 1 when a run
    is broken.
    """
    with opened_store(db, existing=True) as store:
        ids = [resolve_run_id(store, run, db)] if run is not None else store.run_ids()
        reports = [store.verify(run_id) for run_id in ids]
    broken = [r for r in reports if not r.ok]
    console = stdout()
    if reports:
        console.print(verify_table(reports))
    line = Text(f"{len(reports)} runs verified, {len(broken)} broken")
    line.stylize("bold red" if broken else "bold green")
    console.print(line)
    if broken:
        raise typer.Exit(1)


class _NoModelCalls:
    """The client a counterfactual router is built with; replay swaps in the recorded one."""

    async def complete(self, request: ModelRequest) -> ModelResponse:
        msg = "replay serves model outputs from the trace; no provider is called"
        raise ModelBadRequest(msg, model=request.model.name)


@runs_app.command("replay")
def replay(
    run: RunArg,
    db: DbOption = DEFAULT_DB,
    router: Annotated[
        str | None,
        typer.Option(
            "--router",
            metavar="GRAPH.yaml",
            help="Replay against this router layout (a graph YAML file, or a bundled graph "
            "name): a counterfactual. Default: the recorded router (an exact replay).",
        ),
    ] = None,
    app: Annotated[
        str | None,
        typer.Option(
            "--app",
            metavar="MODULE:ATTR",
            help="Where the agents are: a Registry, or a function returning one. Default: the "
            "app recorded with the run.",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Re-run a recorded run from its trace and diff the decisions step by step.

    Every model output is served from the trace (no tokens spent). With --router, the same
    input is routed by another layout (a counterfactual); outputs the recording does not hold
    are marked unobserved.
    """
    from agentroute import replay as replay_run

    with opened_store(db, existing=True) as store:
        run_id = resolve_run_id(store, run, db)
        trace = store.get_run(run_id)
        registry = _load_registry(app or trace.run.router.get("app"), run_id)
        warning = None
        if trace.run.registry_hash and registry.content_hash() != trace.run.registry_hash:
            warning = (
                "the registry differs from the one that recorded the run "
                f"({registry.content_hash()[:12]} vs {trace.run.registry_hash[:12]}); "
                "decisions may diverge for that reason"
            )
        other = _counterfactual_router(registry, router, store) if router else None
        report = asyncio.run(replay_run(run_id, other, registry=registry, store=store))
    if as_json:
        data = report.model_dump(mode="json")
        data["identical"] = report.identical
        data["divergences"] = len(report.divergences)
        echo_json(data, indent=2)
        return
    if warning:
        stderr().print(f"warning: {warning}", style="yellow", markup=False)
    _print_replay(report, router)


def _load_registry(app: str | None, run_id: str) -> Registry:
    """Import `module:attr`, a `Registry` or a zero-argument callable returning one."""
    from agentroute.registry import Registry

    if not app:
        msg = (
            f"run {run_id} was recorded without an app; pass --app module:attr naming the "
            "Registry (or a function returning it) that provides its agents"
        )
        raise ConfigurationError(msg)
    module_name, sep, attr = app.partition(":")
    if not sep or not module_name or not attr:
        msg = f"--app {app!r} must look like 'package.module:attribute'"
        raise ConfigurationError(msg)
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))  # like `python -m`: apps in the current directory
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        msg = f"cannot import {module_name!r} (from app {app!r}): {exc}"
        raise ConfigurationError(msg) from exc
    try:
        obj = getattr(module, attr)
    except AttributeError as exc:
        msg = f"module {module_name!r} has no attribute {attr!r} (from app {app!r})"
        raise ConfigurationError(msg) from exc
    if not isinstance(obj, Registry) and callable(obj):
        try:
            inspect.signature(obj).bind()
        except TypeError as exc:
            msg = f"app {app!r} must be a Registry or a function of no arguments ({exc})"
            raise ConfigurationError(msg) from exc
        except ValueError:  # no signature (a builtin): let the call decide
            pass
        obj = obj()
    if not isinstance(obj, Registry):
        msg = f"app {app!r} is a {type(obj).__name__}, not a Registry or a function returning one"
        raise ConfigurationError(msg)
    return obj


def _counterfactual_router(registry: Registry, graph: str, store: TraceStore) -> Router:
    from agentroute._content import content_dir
    from agentroute.runtime import Router

    path = Path(graph)
    if not path.exists() and not path.suffix:
        bundled = content_dir("graphs") / f"{graph}.yaml"
        if bundled.exists():
            path = bundled
    if not path.exists():
        names = sorted(p.stem for p in content_dir("graphs").glob("*.yaml"))
        msg = (
            f"--router {graph!r}: no such graph file; give a path to a graph YAML file or a "
            f"bundled graph's name ({', '.join(names)})"
        )
        raise ConfigurationError(msg)
    return Router.from_graph(registry, path, store=store, client=_NoModelCalls())


def _print_replay(report: ReplayReport, router: str | None) -> None:
    console = stdout()
    against = f"against {router}" if router else "with the recorded router"
    console.print(
        Text.assemble(
            ("replay ", "bold"),
            (report.run_id, "cyan"),
            f" {against}: ",
            (report.mode, "bold"),
        )
    )
    console.print(
        f"model calls served from the trace: {report.model_calls_served} (no tokens spent)",
        markup=False,
    )
    if report.diffs:
        console.print(replay_table(report))
    for label, status, answer in (
        ("recorded", report.recorded_status, report.recorded_answer),
        ("replayed", report.replayed_status, report.replayed_answer),
    ):
        console.print(
            Text.assemble(
                (f"{label}: ", "bold"), status_text(status), " — ", truncate(answer, 160) or "—"
            )
        )
    if report.unobserved:
        console.print(
            f"unobserved model outputs ({len(report.unobserved)}): the replay needed outputs "
            "the recording does not hold; they were not invented",
            style="red",
            markup=False,
        )
        for what in report.unobserved:
            console.print(f"  {what}", style="red", markup=False)
    if report.error:
        console.print(f"the replayed run failed: {report.error}", style="red", markup=False)
    n = len(report.divergences)
    if report.identical:
        console.print("identical", style="bold green")
    else:
        console.print(f"{n} divergence{'' if n == 1 else 's'}", style="bold yellow")


class ExportFormat(StrEnum):
    """Export formats."""

    JSONL = "jsonl"


@runs_app.command("export")
def export(
    runs: Annotated[
        list[str] | None,
        typer.Argument(metavar="[RUN]...", help="Runs to export (ids or prefixes); default: all."),
    ] = None,
    db: DbOption = DEFAULT_DB,
    fmt: Annotated[
        ExportFormat, typer.Option("--format", help="Output format: one JSON record a line.")
    ] = ExportFormat.JSONL,
    out: Annotated[
        str, typer.Option("--out", metavar="FILE|-", help="Where to write; - is standard output.")
    ] = "-",
) -> None:
    """Export every record of every run (or of the given runs), in chain order."""
    del fmt  # one format so far; the option keeps room for others
    with opened_store(db, existing=True) as store:
        ids = [resolve_run_id(store, r, db) for r in runs] if runs else store.run_ids()
        if out == "-":
            _write_records(store, ids, sys.stdout, progress=False)
            return
        try:
            with Path(out).open("w", encoding="utf-8") as sink:
                count = _write_records(store, ids, sink, progress=len(ids) > _PROGRESS_ABOVE)
        except OSError as exc:
            fail(f"cannot write {out}: {exc.strerror or exc}")
    stderr().print(f"{count} records of {len(ids)} runs written to {out}", markup=False)


def _write_records(store: TraceStore, ids: list[str], sink: TextIO, *, progress: bool) -> int:
    from rich.progress import Progress

    count = 0
    with Progress(console=stderr(), transient=True, disable=not progress) as bar:
        job = bar.add_task("exporting runs", total=len(ids))
        for run_id in ids:
            for record in store.get_run(run_id).records:
                sink.write(json.dumps(record.model_dump(mode="json"), ensure_ascii=False))
                sink.write("\n")
                count += 1
            bar.advance(job)
    return count


@runs_app.command("feedback")
def feedback(
    run: RunArg,
    *,
    score: Annotated[
        float | None, typer.Option("--score", min=0.0, max=1.0, help="Quality in [0, 1].")
    ] = None,
    label: Annotated[
        str | None, typer.Option("--label", help="A label such as resolved or misrouted.")
    ] = None,
    comment: Annotated[str | None, typer.Option("--comment", help="Free text.")] = None,
    agent: Annotated[
        str | None, typer.Option("--agent", help="The agent the feedback is about.")
    ] = None,
    source: Annotated[str, typer.Option("--source", help="Who gives it.")] = "user",
    db: DbOption = DEFAULT_DB,
) -> None:
    """Append feedback (a score and/or a label) to a run's chain."""
    if score is None and label is None:
        msg = "give --score (0..1) and/or --label"
        raise typer.BadParameter(msg, param_hint="--score/--label")
    with opened_store(db, existing=True) as store:
        run_id = resolve_run_id(store, run, db)
        record = store.add_feedback(
            run_id, score=score, label=label, agent=agent, comment=comment, source=source
        )
    stdout().print(f"feedback recorded on run {run_id} (seq {record.seq})", markup=False)
