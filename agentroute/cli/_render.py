"""Rich renderables for the commands: tables of runs, the run tree, verify and replay reports.

User data (tasks, answers, reasons) goes into `Text` objects, never into markup strings, so
brackets in a customer's message are printed as they are.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from agentroute.cli._common import one_line
from agentroute.cli._digest import RunDigest

if TYPE_CHECKING:
    from agentroute import ReplayReport, StepDiff
    from agentroute.stores import (
        AgentOutputRecord,
        DecisionRecord,
        ModelCallRecord,
        RunSummary,
        RunTrace,
        VerifyReport,
    )

__all__ = [
    "WIDE",
    "demo_table",
    "local_time",
    "replay_table",
    "run_tree",
    "runs_table",
    "status_text",
    "truncate",
    "usd",
    "verify_table",
]

_STATUS_STYLES = {
    "completed": "green",
    "out_of_scope": "cyan",
    "step_limit": "yellow",
    "loop_detected": "yellow",
    "budget_exhausted": "yellow",
    "failed": "bold red",
    "running": "dim",
}

_DIFF_STYLES = {
    "same": "green",
    "changed": "yellow",
    "only_recorded": "magenta",
    "only_replayed": "magenta",
    "unobserved": "red",
}


def truncate(text: str | None, width: int) -> str:
    """`text` on one line, cut to `width` characters with an ellipsis."""
    flat = one_line(text or "")
    return flat if len(flat) <= width else flat[: max(0, width - 1)].rstrip() + "…"


def usd(amount: float) -> str:
    """A cost in US dollars with six decimals."""
    return f"${amount:.6f}"


def local_time(timestamp: float) -> str:
    """A Unix time as local `YYYY-MM-DD HH:MM:SS`."""
    return datetime.fromtimestamp(timestamp).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def status_text(status: str | None) -> Text:
    """A run status, coloured (`running` when the run has no end record)."""
    label = status or "running"
    return Text(label, style=_STATUS_STYLES.get(label, ""))


def _compact(value: Any, width: int = 60) -> str:
    if isinstance(value, str):
        return truncate(value, width)
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return truncate("[" + ", ".join(value) + "]", width)
    return truncate(json.dumps(value, ensure_ascii=False, separators=(",", ":")), width)


def _pairs(mapping: Mapping[str, Any], width: int = 60) -> str:
    return " ".join(f"{key}={_compact(value, width)}" for key, value in mapping.items())


def _label(key: str, value: str | Text, style: str = "") -> Text:
    return Text.assemble((f"{key}: ", "bold"), value if isinstance(value, Text) else (value, style))


# -- the demo and `runs list` --------------------------------------------------------------------


def _skills(skills: Sequence[str]) -> str:
    if not skills:
        return "no skills"
    top = ", ".join(skills[:2]) + (", …" if len(skills) > 2 else "")
    return f"{len(skills)} skill{'s' if len(skills) > 1 else ''}: {top}"


def _per_agent(run: RunDigest, cell: str) -> Text:
    lines: list[str] = []
    for branch in run.branches:
        value = _skills(branch.skills) if cell == "skills" else ", ".join(branch.models) or "—"
        lines.append(f"{branch.agent}: {value}" if len(run.branches) > 1 else value)
    return Text("\n".join(lines) or "—")


def _agents(run: RunDigest) -> str:
    return " → ".join(" + ".join(step) for step in run.steps) or "—"


def _why(run: RunDigest) -> str:
    why = "; ".join(w for w in run.why if w) or run.reason
    if run.status == "failed" and run.error:
        why = f"{why}; {truncate(run.error, 120)}" if why else truncate(run.error, 120)
    return why


WIDE = 110
"""Console width from which the demo table has a column per field (narrower: stacked)."""


def demo_table(runs: Sequence[RunDigest], *, width: int = WIDE) -> Table:
    """One row per demo run: who acted, with which skills, on which model, why, at what cost.

    Below `WIDE` columns the agents, skills, models and reason are stacked in one cell, so a
    narrow terminal wraps text instead of cropping columns.
    """
    if width < WIDE:
        return _stacked_demo_table(runs)
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("run", style="cyan", no_wrap=True)
    table.add_column("message", ratio=3, min_width=16)
    table.add_column("status", no_wrap=True)
    table.add_column("agents", ratio=2, min_width=8)
    table.add_column("skills", ratio=3, min_width=12)
    table.add_column("model", min_width=5)
    table.add_column("why", ratio=3, min_width=12)
    table.add_column("cost (USD)", justify="right", no_wrap=True)
    for run in runs:
        table.add_row(
            run.run_id[:8],
            Text(truncate(run.task, 60)),
            status_text(run.status),
            Text(_agents(run)),
            _per_agent(run, "skills"),
            _per_agent(run, "model"),
            Text(_why(run)),
            f"{run.cost_usd:.6f}",
        )
    return table


def _stacked_demo_table(runs: Sequence[RunDigest]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_lines=True)
    table.add_column("run", style="cyan", no_wrap=True)
    table.add_column("status")
    table.add_column("message · agents · skills · model · why", ratio=1)
    table.add_column("cost (USD)", justify="right", no_wrap=True)
    for run in runs:
        cell = Text(truncate(run.task, 100))
        cell.append("\nagents: ", style="bold")
        cell.append(_agents(run))
        for branch in run.branches:
            cell.append(f"\n  {branch.agent}: ", style="bold")
            cell.append(f"{', '.join(branch.models) or '—'} · {_skills(branch.skills)}")
        cell.append("\nwhy: ", style="bold")
        cell.append(_why(run))
        table.add_row(run.run_id[:8], status_text(run.status), cell, f"{run.cost_usd:.6f}")
    return table


def runs_table(runs: Iterable[RunSummary]) -> Table:
    """`agentroute runs list`."""
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("run", style="cyan", no_wrap=True)
    table.add_column("started", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("steps", justify="right")
    table.add_column("cost (USD)", justify="right", no_wrap=True)
    table.add_column("task", ratio=1, min_width=16)
    for run in runs:
        table.add_row(
            run.run_id,
            local_time(run.created_at),
            status_text(run.status),
            str(run.steps),
            f"{run.cost_usd:.6f}",
            Text(truncate(run.task, 80)),
        )
    return table


# -- `runs show` ---------------------------------------------------------------------------------


def _decision(parent: Tree, d: DecisionRecord) -> Tree:
    chosen = " + ".join(d.chosen) or "—"
    head = Text.assemble(
        (f"{d.slot} slot", "bold magenta"),
        f" · {d.strategy} v{d.strategy_version} → ",
        (chosen, "bold"),
    )
    if d.outcome != "route":
        head.append(f"  [{d.outcome}]", style="yellow")
    head.append(f"  {d.latency_ms:.1f} ms", style="dim")
    node = parent.add(head)
    node.add(_label("reason", d.reason or "—"))
    if d.candidates:
        cands = node.add(Text(f"candidates ({len(d.candidates)})", style="bold"))
        for c in d.candidates:
            score = "—" if c.score is None else f"{c.score:.3f}"
            line = Text.assemble((c.name, "bold" if c.name in d.chosen else ""), f"  {score}")
            if c.detail:
                line.append(f"  {_pairs(c.detail)}", style="dim")
            cands.add(line)
    if d.evidence:
        node.add(_label("evidence", Text(_pairs(d.evidence, 50), style="dim")))
    if d.error:
        node.add(_label("error", d.error, "red"))
    return node


def _call(parent: Tree, c: ModelCallRecord) -> None:
    line = Text.assemble(
        ("model call", "bold blue"),
        f" #{c.call_index} attempt {c.attempt}: ",
        (c.model, "bold"),
        f" ({c.model_id})  {c.input_tokens}→{c.output_tokens} tokens  {usd(c.cost_usd)}  "
        f"{c.latency_ms:.0f} ms",
    )
    if c.error:
        line.append(f"  {c.error_type or 'error'}: {truncate(c.error, 160)}", style="red")
    parent.add(line)


def run_tree(trace: RunTrace) -> Tree:
    """`agentroute runs show`: the run, its steps, its end and its feedback.

    Each step shows the agent slot's decision, then one node per branch (skills and model
    decisions, model calls, the agent's output), then the refiner's decision.
    """
    root = Tree(Text.assemble(("run ", "bold"), (trace.run_id, "bold cyan")))
    _run_header(root, trace)
    steps = sorted(
        {d.step for d in trace.decisions}
        | {o.step for o in trace.outputs}
        | {c.step for c in trace.model_calls}
    )
    for step in steps:
        _step(root.add(Text(f"step {step}", style="bold")), trace, step)
    _run_end(root, trace)
    return root


def _run_header(root: Tree, trace: RunTrace) -> None:
    run, end = trace.run, trace.end
    root.add(_label("task", run.task))
    status = status_text(end.status if end else None)
    if end is not None and end.reason:
        status.append(f" — {end.reason}", style="")
    root.add(_label("status", status))
    root.add(_label("started", local_time(run.created_at)))
    budget = usd(run.budget_usd) if run.budget_usd is not None else "none"
    root.add(_label("cost", f"{usd(end.cost_usd if end else 0.0)} of budget {budget}"))
    router = run.router
    slots = ", ".join(
        f"{slot}={(router.get(slot) or {}).get('strategy', '—')}"
        for slot in ("agent", "skills", "model", "refiner")
    )
    root.add(_label("router", f"{router.get('name', '?')} ({slots})"))
    root.add(_label("registry", run.registry_hash[:12] or "—"))
    if run.replay_of:
        root.add(_label("replay of", run.replay_of))
    if run.metadata:
        root.add(_label("metadata", _pairs(run.metadata)))


def _step(node: Tree, trace: RunTrace, step: int) -> None:
    decisions = [d for d in trace.decisions if d.step == step]
    calls = [c for c in trace.model_calls if c.step == step]
    outputs = [o for o in trace.outputs if o.step == step]
    _slot(node, decisions, calls, "agent", "router")
    # Branches in the order they first appear in the chain.
    first_seen: dict[str, int] = {}
    for d in decisions:
        if d.slot in ("skills", "model") and d.branch:
            first_seen.setdefault(d.branch, d.seq)
    for c in calls:
        if c.branch not in ("router", "refiner"):
            first_seen[c.branch] = min(first_seen.get(c.branch, c.seq), c.seq)
    for o in outputs:
        first_seen[o.agent] = min(first_seen.get(o.agent, o.seq), o.seq)
    for name in sorted(first_seen, key=first_seen.__getitem__):
        branch = node.add(Text.assemble(("branch ", "bold"), (name, "bold green")))
        _branch(
            branch,
            [d for d in decisions if d.branch == name and d.slot in ("skills", "model")],
            [c for c in calls if c.branch == name],
            [o for o in outputs if o.agent == name],
        )
    _slot(node, decisions, calls, "refiner", "refiner")


def _slot(
    node: Tree,
    decisions: list[DecisionRecord],
    calls: list[ModelCallRecord],
    slot: str,
    caller: str,
) -> None:
    """A step-level slot's decisions, with the model calls its strategy made (as `caller`)."""
    for d in decisions:
        if d.slot == slot:
            slot_node = _decision(node, d)
            for c in calls:
                if c.branch == caller:
                    _call(slot_node, c)


def _branch(
    node: Tree,
    decisions: list[DecisionRecord],
    calls: list[ModelCallRecord],
    outputs: list[AgentOutputRecord],
) -> None:
    for d in decisions:
        if d.slot == "skills":
            _decision(node, d)
    for o in outputs:
        shown = f"{len(o.skills)}: {', '.join(o.skills)}" if o.skills else "none"
        node.add(_label("skills given", shown))
    for d in decisions:
        if d.slot == "model":
            _decision(node, d)
    for c in calls:
        _call(node, c)
    for o in outputs:
        if o.error:
            node.add(_label("error", f"{o.error_type}: {truncate(o.error, 200)}", "red"))
            continue
        text = truncate(o.output, 200)
        if not o.final:
            text += "  (not final: routes again)"
        node.add(_label("output", text))


def _run_end(root: Tree, trace: RunTrace) -> None:
    end = trace.end
    if end is None:
        root.add(Text("no end record: the run is still going, or its process died", style="dim"))
    else:
        node = root.add(
            Text.assemble(
                ("end ", "bold"),
                status_text(end.status),
                f" · {end.steps} step(s) · {usd(end.cost_usd)}",
            )
        )
        node.add(_label("reason", end.reason or "—"))
        if end.answer is not None:
            node.add(_label("answer", truncate(end.answer, 400)))
        if end.error:
            node.add(_label("error", f"{end.error_type}: {end.error}", "red"))
    for f in trace.feedback:
        parts = [
            f"score={f.score:g}" if f.score is not None else "",
            f"label={f.label}" if f.label else "",
            f"agent={f.agent}" if f.agent else "",
        ]
        line = Text.assemble(("feedback ", "bold"), " ".join(p for p in parts if p))
        line.append(f"  from {f.source} at {local_time(f.created_at)}", style="dim")
        if f.comment:
            line.append(f"  “{truncate(f.comment, 200)}”")
        root.add(line)


# -- `runs verify` and `runs replay` -------------------------------------------------------------


def verify_table(reports: Iterable[VerifyReport]) -> RenderableType:
    """One row per verified run, then each broken run's problems, one per line.

    The problems are sentences: in a table column they would be wrapped (and cut) beside the
    32-character run ids at 80 columns, so they are printed below the table, at full width.
    """
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("run", style="cyan", no_wrap=True)
    table.add_column("records", justify="right")
    table.add_column("complete")
    table.add_column("chain", no_wrap=True)
    table.add_column("problems", justify="right")
    details: list[RenderableType] = []
    for r in reports:
        table.add_row(
            r.run_id,
            str(r.records),
            Text("yes", style="green") if r.complete else Text("no", style="yellow"),
            Text("OK", style="bold green") if r.ok else Text("BROKEN", style="bold red"),
            Text(str(len(r.problems)), style="red") if r.problems else Text("—", style="dim"),
        )
        if r.problems:
            details.append(Text.assemble("problems in run ", (r.run_id, "cyan"), ":"))
            details.extend(Text(f"  {problem}", style="red") for problem in r.problems)
    return Group(table, *details)


def _side(values: list[str] | None, slot: str) -> Text:
    if values is None:
        return Text("—", style="dim")
    if slot == "output":
        return Text(truncate(values[0] if values else "", 60))
    return Text(" + ".join(values) or "—")


def _diff_row(diff: StepDiff) -> tuple[str, str, str, Text, Text, Text]:
    return (
        str(diff.step),
        # A slot that decided again in the same step (a budget re-route) is numbered.
        f"{diff.slot} #{diff.repeat + 1}" if diff.repeat else diff.slot,
        diff.branch or "—",
        _side(diff.recorded, diff.slot),
        _side(diff.replayed, diff.slot),
        Text(diff.status, style=_DIFF_STYLES.get(diff.status, "")),
    )


def replay_table(report: ReplayReport) -> Table:
    """The step-by-step diff of a replay."""
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("step", justify="right")
    table.add_column("slot")
    table.add_column("branch")
    table.add_column("recorded", ratio=1, min_width=12)
    table.add_column("replayed", ratio=1, min_width=12)
    table.add_column("status", no_wrap=True)
    for diff in report.diffs:
        table.add_row(*_diff_row(diff))
    return table
