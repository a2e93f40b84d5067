"""`agentroute demo`: route the support-desk demo's customer messages and show every decision."""

from __future__ import annotations

import shlex
from collections import Counter
from collections.abc import Iterable
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from agentroute.cli._common import DEFAULT_DB, DbOption, echo_json, fail, stdout
from agentroute.cli._digest import RunDigest, digest
from agentroute.cli._render import demo_table, usd
from agentroute.errors import ModelAuthError, ModelCallError, RunError

if TYPE_CHECKING:
    from agentroute.registry import ModelSpec
    from agentroute.runtime import Router

__all__ = ["DemoGraph", "demo"]


class DemoGraph(StrEnum):
    """The bundled router layouts the demo can run."""

    SUPPORT_DESK = "support-desk"
    ESCALATION_PATH = "escalation-path"


def demo(
    db: DbOption = DEFAULT_DB,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            metavar="PROVIDER/NAME",
            help="A LiteLLM model for every agent (e.g. openai/gpt-4o-mini; the provider's API "
            "key must be set). Default: an offline scripted model.",
        ),
    ] = None,
    graph: Annotated[
        DemoGraph, typer.Option("--graph", help="The router layout, from the bundled graphs/.")
    ] = DemoGraph.SUPPORT_DESK,
    task: Annotated[
        list[str] | None,
        typer.Option(
            "--task",
            metavar="TEXT",
            help="A customer message to route (repeatable). Default: the demo's seven messages.",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object per run instead of a table.")
    ] = False,
) -> None:
    """Route customer messages through the support-desk demo and show every decision.

    For each message: who handled it, with which skills, on which model, why, and at what
    cost. Every decision is stored in --db, ready for `agentroute runs show/verify/replay`.
    """
    from agentroute._demo import DEMO_TASKS, build_router

    tasks = list(task) if task else list(DEMO_TASKS)
    router = build_router(store=db, model=model, graph=graph.value)
    try:
        if model is not None:
            _check_credentials(router.registry.models.values())
        console = stdout()
        runs: list[RunDigest] = []
        for i, text in enumerate(tasks, 1):
            if console.is_terminal and not as_json:
                with console.status(f"routing message {i} of {len(tasks)}…"):
                    run = _run_one(router, text)
            else:
                run = _run_one(router, text)
            runs.append(run)
            if as_json:
                echo_json(run.to_json())
    finally:
        router.close()
    failed = [r for r in runs if r.status == "failed"]
    if not as_json:
        _print_summary(runs, db, graph.value, model)
    if failed:
        fail(
            f"{len(failed)} of {len(runs)} runs failed (first: {failed[0].run_id}: "
            f"{failed[0].error or failed[0].reason})"
        )


def _check_credentials(models: Iterable[ModelSpec]) -> None:
    """Fail before the first run when the provider's API key is not in the environment.

    Without this, every message would go through the model's retries before failing, and
    some providers report a missing key as a server error rather than an authentication one.
    """
    from agentroute.models import missing_api_key

    for spec in models:
        env = missing_api_key(spec)
        if env is not None:
            msg = (
                f"--model {spec.model} needs the provider's API key, and {env} is not set: "
                f"export {env}=... and run again, or leave out --model to use the offline model"
            )
            raise ModelAuthError(msg, model=spec.name)


def _run_one(router: Router, text: str) -> RunDigest:
    """Run one message; a failed run is shown as such unless the model itself is broken."""
    try:
        run_id = router.run_sync(text).run_id
    except RunError as exc:
        if exc.run_id is None:
            raise
        trace = router.trace(exc.run_id)
        if trace.end is not None and _is_model_failure(trace.end.error_type):
            # Every other message would fail the same way (bad key, unknown model, outage).
            raise
        return digest(trace)
    return digest(router.trace(run_id))


def _is_model_failure(error_type: str | None) -> bool:
    from agentroute import errors

    cls = getattr(errors, error_type or "", None)
    return isinstance(cls, type) and issubclass(cls, ModelCallError)


def _print_summary(runs: list[RunDigest], db: str, graph: str, model: str | None) -> None:
    console = stdout()
    model_name = model or "offline scripted model"
    console.print(f"agentroute demo · graph {graph} · {model_name}", style="bold", markup=False)
    console.print(demo_table(runs, width=console.width))
    statuses = Counter(r.status for r in runs)
    total = Text.assemble(
        ("total: ", "bold"),
        f"{len(runs)} run(s) (",
        ", ".join(f"{n} {status}" for status, n in statuses.most_common()),
        f") · {sum(r.model_calls for r in runs)} model call(s) · "
        f"{sum(r.input_tokens for r in runs):,} tokens in, "
        f"{sum(r.output_tokens for r in runs):,} out · ",
        (usd(sum(r.cost_usd for r in runs)), "bold"),
    )
    console.print(total, soft_wrap=True)
    console.print(Text.assemble(("traces: ", "bold"), db), soft_wrap=True)
    if db.startswith("memory:"):
        console.print("(memory:// keeps nothing once the command ends)", style="dim")
        return
    if not runs:
        return
    example = next((r for r in runs if any(len(s) > 1 for s in r.steps)), runs[0])
    flag = f"--db {shlex.quote(db)}"
    short = example.run_id[:8]
    console.print(Text("next:", style="bold"))
    for command, what in (
        (f"agentroute runs show {short} {flag}", "every decision of one run, with candidates"),
        (f"agentroute runs verify {flag}", "check that no stored record was edited"),
        (f"agentroute runs replay {short} {flag}", "re-run it from the trace, zero model calls"),
    ):
        console.print(
            Text.assemble("  ", (command, "cyan"), ("   # " + what, "dim")), soft_wrap=True
        )
