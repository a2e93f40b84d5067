"""`agentroute eval pool`: an online learning router over a pool with recorded outcomes.

```text
agentroute eval pool --outcomes OUTCOMES.jsonl
    [--strategy ant-colony|ucb|epsilon-greedy|random|best-single]
    [--tasks-from text|field] [--clusters 12] [--warm-up N] [--seed 0] [--json]
```

OUTCOMES lines: `{"id", "text", "task"?, "outcomes": {agent: score 0..1}, "costs"?: {agent: $}}`.
A score is a number in [0, 1] or `null` (not recorded); a cost is a number >= 0 (dollars) or
`null`, for an agent named in some line's `outcomes`. Anything else (a string such as `"0.5"`,
a boolean, NaN, a list, a cost key that names no agent) is an error naming the line.

The queries are streamed once, in file order: for each, the strategy picks one agent among
those with a recorded outcome (`best-single` excepted, see below), receives that outcome as its
reward (and its cost), and learns before the next query. Nothing is known in advance, unless
`--warm-up N` is given: then the first N lines are labelled data the strategy learns from
before serving, every recorded outcome of each line (AMRO-S's offline warm-up:
`AntColony.warm_up` for `ant-colony`; for `ucb` and `epsilon-greedy`, one prior update per
recorded outcome under the line's top task; `random` and `best-single` learn nothing), and
only the remaining lines are streamed and measured: every metric below, the best single agent
included, is over the streamed lines. With `--tasks-from text` the warm-up lines also seed the
clusters.

Task types:

- `--tasks-from field`: the lines' `task` (a line without one is task `unknown`); the mixture
  is one-hot.
- `--tasks-from text` (default when a line lacks `task`): inferred from the text alone by
  `OnlineClusterIntent` — the bundled MiniLM embeds each query, sequential k-means
  (`--clusters` centroids, seeded by the first distinct queries) assigns it, and the mixture
  is a softmax of its similarities to the centroids. The bandits use the nearest cluster.

Strategies: `ant-colony` (`AntColony` with its defaults; a feedback score ≥ 0.5 is an accepted
path; learning is applied in batches of `batch_size`, as its background worker does), `ucb`
(UCB1 per task type), `epsilon-greedy` (ε = 0.1 per task type), `random`, and `best-single`
(the best single agent on every line: the reference below, which cheats; its regret is 0).

The best single agent in hindsight is the agent with the highest mean score over **every**
line, a line where it has no recorded outcome counting 0 (its cost there is its recorded cost,
if any). The same definition gives `best_single`, `best_single_quality`, `best_single_cost`, the
`best-single` strategy's picks and the regret; ties go to the first agent in name order.

Metrics: `quality` (mean score of the picks), `cost` (total dollars of the picks),
`best_single_*` (the best single agent, as above), `oracle_quality` (best recorded score per
query), `regret` (cumulative regret against the best single agent: Σ best-single score −
score) and `regret_oracle` (against the per-query oracle). `--json` never holds NaN or
infinities.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from agentroute._jsonl import json_lines
from agentroute.cli._common import echo_json, stderr, stdout
from agentroute.errors import ConfigurationError

__all__ = ["PoolReport", "evaluate_pool", "read_outcomes", "register"]


class PoolStrategy(StrEnum):
    """Strategies `eval pool` can run."""

    ant_colony = "ant-colony"
    ucb = "ucb"
    epsilon_greedy = "epsilon-greedy"
    random = "random"
    best_single = "best-single"


class TasksFrom(StrEnum):
    """Where task types come from."""

    text = "text"
    field = "field"


@dataclass(frozen=True)
class PoolLine:
    """One query with its recorded outcomes."""

    id: str
    text: str
    task: str | None
    outcomes: dict[str, float]
    costs: dict[str, float]


@dataclass(frozen=True)
class PoolReport:
    """What `eval pool` prints."""

    strategy: str
    n: int
    quality: float
    cost: float
    best_single: str
    best_single_quality: float
    best_single_cost: float
    oracle_quality: float
    regret: float
    regret_oracle: float
    picks: dict[str, int]
    curve: list[float]
    """Cumulative regret against the best single agent after each query."""
    warm_up: int = 0
    """Lines learned from before streaming (not counted in `n` or in any metric)."""

    def as_json(self) -> dict[str, Any]:
        """The `--json` object."""
        return {
            "strategy": self.strategy,
            "n": self.n,
            "quality": round(self.quality, 6),
            "cost": round(self.cost, 8),
            "best_single": self.best_single,
            "best_single_quality": round(self.best_single_quality, 6),
            "best_single_cost": round(self.best_single_cost, 8),
            "oracle_quality": round(self.oracle_quality, 6),
            "regret": round(self.regret, 6),
            "regret_oracle": round(self.regret_oracle, 6),
            "picks": self.picks,
            "warm_up": self.warm_up,
        }


def read_outcomes(path: Path) -> list[PoolLine]:
    """Read and check an OUTCOMES file.

    Raises:
        ConfigurationError: A line is not JSON, lacks `text` or `outcomes`, has a score that is
            not a number in [0, 1] (or null), has `costs` that is not an object of finite
            numbers >= 0 (or nulls), or prices an agent that has no outcome anywhere in the
            file (the message names the line).
    """
    lines: list[PoolLine] = []
    named: set[str] = set()
    cost_keys: list[tuple[str, str]] = []
    for no, data in json_lines(path):
        where = f"{path}:{no}"
        if not isinstance(data.get("text"), str):
            msg = f"{where}: each line needs a 'text' string"
            raise ConfigurationError(msg)
        outcomes = data.get("outcomes")
        if not isinstance(outcomes, dict) or not outcomes:
            msg = f"{where}: 'outcomes' must be a non-empty object {{agent: score}}"
            raise ConfigurationError(msg)
        named.update(outcomes)
        scores = _scores(outcomes, where)
        costs = _costs(data.get("costs"), where)
        cost_keys.extend((agent, where) for agent in costs)
        task = data.get("task")
        lines.append(
            PoolLine(
                id=str(data.get("id", no)),
                text=data["text"],
                task=str(task) if task is not None else None,
                outcomes=scores,
                costs=costs,
            )
        )
    if not lines:
        msg = f"--outcomes {path}: no lines"
        raise ConfigurationError(msg)
    for agent, where in cost_keys:
        # Checked against the whole file: a line may price agents it has no outcome for.
        if agent not in named:
            close = difflib.get_close_matches(agent, named, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            msg = (
                f"{where}: 'costs' names {agent!r}, which is not an agent of any line's "
                f"'outcomes' (agents: {', '.join(map(repr, sorted(named)))}){hint}"
            )
            raise ConfigurationError(msg)
    return lines


def _scores(outcomes: dict[str, Any], where: str) -> dict[str, float]:
    """A line's recorded scores (nulls left out), each checked to be a number in [0, 1]."""
    scores: dict[str, float] = {}
    for agent, value in outcomes.items():
        score = _number(value, where, f"the score of {agent!r}", "in [0, 1]")
        if score is None:
            continue
        if not 0.0 <= score <= 1.0:
            msg = f"{where}: the score of {agent!r} is {value!r}; scores are in [0, 1]"
            raise ConfigurationError(msg)
        scores[agent] = score
    if not scores:
        msg = f"{where}: no agent has a recorded outcome"
        raise ConfigurationError(msg)
    return scores


def _costs(raw: Any, where: str) -> dict[str, float]:
    """A line's `costs` (absent or null: none; null values left out), each a number >= 0."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        msg = (
            f"{where}: 'costs' must be an object {{agent: dollars}}, "
            f"got {type(raw).__name__} {raw!r}"
        )
        raise ConfigurationError(msg)
    costs: dict[str, float] = {}
    for agent, value in raw.items():
        cost = _number(value, where, f"the cost of {agent!r}", ">= 0 (dollars)")
        if cost is None:
            continue
        if cost < 0:
            msg = f"{where}: the cost of {agent!r} is {value!r}; costs are dollars, >= 0"
            raise ConfigurationError(msg)
        costs[agent] = cost
    return costs


def _number(value: Any, where: str, what: str, expected: str) -> float | None:
    """`value` as a float; `None` for JSON null; an error for anything but a finite number."""
    if value is None:
        return None
    # bool is an int in Python, and "0.5" a string in JSON: neither is a number here.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        msg = f"{where}: {what} is {value!r}; it must be a finite number {expected}, or null"
        raise ConfigurationError(msg)
    return float(value)


class _Bandit:
    """UCB1 or ε-greedy per task type, over the agents available for each query."""

    def __init__(self, kind: str, agents: Sequence[str], tasks: int, rng: np.random.Generator):
        self.kind = kind
        self.n = np.zeros((tasks, len(agents)))
        self.s = np.zeros((tasks, len(agents)))
        self.rng = rng

    def pick(self, task: int, available: np.ndarray) -> int:
        n, s = self.n[task], self.s[task]
        untried = [int(a) for a in available if n[a] == 0]
        if untried:
            return untried[0] if self.kind == "ucb" else int(self.rng.choice(untried))
        if self.kind == "ucb":
            t = n[available].sum()
            value = s[available] / n[available] + np.sqrt(2 * np.log(t) / n[available])
            return int(available[int(np.argmax(value))])
        if self.rng.random() < 0.1:
            return int(self.rng.choice(available))
        return int(available[int(np.argmax(s[available] / n[available]))])

    def update(self, task: int, arm: int, reward: float) -> None:
        self.n[task, arm] += 1
        self.s[task, arm] += reward


def _task_source(lines: Sequence[PoolLine], tasks_from: TasksFrom | None, clusters: int) -> Any:
    from agentroute.routing.colony import Mixture, OnlineClusterIntent

    mode = tasks_from or (TasksFrom.field if all(line.task for line in lines) else TasksFrom.text)
    if mode is TasksFrom.field:
        names = sorted({line.task or "unknown" for line in lines})

        def by_field(i: int) -> Mixture:
            return Mixture({lines[i].task or "unknown": 1.0}, source="field")

        return names, by_field, mode
    intent = OnlineClusterIntent(k=clusters)
    try:
        vectors = intent.embedder.embed([line.text for line in lines])
    except ImportError as exc:
        msg = f"--tasks-from text needs local embeddings: {exc}"
        raise ConfigurationError(msg) from exc

    def by_text(i: int) -> Mixture:
        return intent.observe(np.asarray(vectors[i], dtype=np.float64))

    return list(intent.task_names), by_text, mode


def evaluate_pool(
    lines: Sequence[PoolLine],
    strategy: PoolStrategy,
    *,
    tasks_from: TasksFrom | None = None,
    clusters: int = 12,
    seed: int = 0,
    warm_up: int = 0,
) -> PoolReport:
    """Stream `lines` once, in order, through an online router; return the metrics.

    Args:
        lines: The checked OUTCOMES lines (`read_outcomes`).
        strategy: The online router to run.
        tasks_from: Where task types come from (default: `field` when every line has one).
        clusters: Task types inferred with `--tasks-from text`.
        seed: Seed of sampling and exploration.
        warm_up: The first `warm_up` lines are labelled data learned from before serving
            (see the module docstring); the rest are streamed and measured.

    Raises:
        ConfigurationError: Task inference from text needs the embeddings extra; `warm_up`
            is negative or leaves no line to stream.
    """
    from agentroute.routing.colony import START, Trajectory

    _check_warm_up(warm_up, len(lines))
    agents = sorted({a for line in lines for a in line.outcomes})
    index = {a: k for k, a in enumerate(agents)}
    n = len(lines)
    scores = np.full((n, len(agents)), np.nan)
    costs = np.zeros((n, len(agents)))
    for i, line in enumerate(lines):
        for a, v in line.outcomes.items():
            scores[i, index[a]] = v
        for a, c in line.costs.items():
            if a in index:
                costs[i, index[a]] = c
    task_names, mixture_of, mode = _task_source(lines, tasks_from, clusters)
    rng = np.random.default_rng(seed)
    # One definition of the best single agent, used for its pick, quality, cost and regret:
    # the agent whose mean score over *every* line is highest, a line where it has no recorded
    # outcome counting 0 (as `best-single`, which calls it on every line, gets). A mean over
    # only the lines where an agent has a score would crown an agent recorded once, at 1.0.
    filled = np.nan_to_num(scores, nan=0.0)
    best = int(np.argmax(filled[warm_up:].mean(0)))
    single_score = filled[warm_up:, best]
    text_mode = mode is TasksFrom.text
    colony = (
        _colony_for(agents, task_names, text_mode, clusters, seed)
        if (strategy is PoolStrategy.ant_colony)
        else None
    )
    pending: list[tuple[Any, float]] = []
    bandit = (
        _Bandit("ucb" if strategy is PoolStrategy.ucb else "eps", agents, len(task_names), rng)
        if strategy in (PoolStrategy.ucb, PoolStrategy.epsilon_greedy)
        else None
    )
    task_index = {t: k for k, t in enumerate(task_names)}
    if warm_up:
        _warm_up(
            lines[:warm_up],
            scores,
            costs,
            agents=agents,
            mixture_of=mixture_of,
            task_index=task_index,
            colony=colony,
            bandit=bandit,
        )
    picks = np.zeros(n, dtype=int)
    for i in range(warm_up, n):
        available = np.flatnonzero(~np.isnan(scores[i]))
        mix = mixture_of(i)
        top = _top_task(mix, task_index)
        if colony is not None:
            checked = colony.check(mix.weights, mix.source)
            choice = colony.decide(
                START, [agents[k] for k in available], checked, seed=seed * 1_000_003 + i
            )
            arm = index[choice.pick]
            traj = Trajectory(
                lines[i].id,
                lines[i].text,
                (choice.pick,),
                dict(checked.weights),
                "completed",
                None,
                float(costs[i, arm]),
            )
            pending.append((traj, 1.0 if scores[i, arm] >= colony.gate_threshold else 0.0))
            if len(pending) >= colony.batch_size:
                colony.commit(colony.updates_for(pending))
                pending = []
        elif bandit is not None:
            arm = bandit.pick(top, available)
            bandit.update(top, arm, float(scores[i, arm]))
        elif strategy is PoolStrategy.best_single:
            arm = best  # the reference itself, on every line (see `best` above)
        else:
            arm = int(rng.choice(available))
        picks[i] = arm
    rows = np.arange(warm_up, n)
    picks = picks[warm_up:]
    chosen = filled[rows, picks]
    oracle = np.nanmax(scores[warm_up:], axis=1)
    curve = np.cumsum(single_score - chosen)
    return PoolReport(
        strategy=strategy.value,
        n=n - warm_up,
        quality=float(chosen.mean()),
        cost=float(costs[rows, picks].sum()),
        best_single=agents[best],
        best_single_quality=float(single_score.mean()),
        best_single_cost=float(costs[warm_up:, best].sum()),
        oracle_quality=float(oracle.mean()),
        regret=float(curve[-1]),
        regret_oracle=float((oracle - chosen).sum()),
        picks={agents[k]: int((picks == k).sum()) for k in range(len(agents))},
        curve=curve.tolist(),
        warm_up=warm_up,
    )


def _top_task(mix: Any, task_index: dict[str, int]) -> int:
    """Index of the mixture's heaviest task (the bandits keep one state per task)."""
    return task_index[max(mix.weights, key=mix.weights.__getitem__)]


def _check_warm_up(warm_up: int, n: int) -> None:
    if not 0 <= warm_up < n:
        msg = (
            f"--warm-up {warm_up}: must be >= 0 and leave at least one line to stream "
            f"(the file has {n} lines; use at most {n - 1})"
        )
        raise ConfigurationError(msg)


def _warm_up(
    lines: Sequence[PoolLine],
    scores: np.ndarray,
    costs: np.ndarray,
    *,
    agents: Sequence[str],
    mixture_of: Any,
    task_index: dict[str, int],
    colony: Any,
    bandit: _Bandit | None,
) -> None:
    """Learn from every recorded outcome of the warm-up lines (the first rows of `scores`)."""
    import asyncio

    from agentroute.routing.colony import WarmUpRun

    runs = []
    for i, line in enumerate(lines):
        mix = mixture_of(i)
        top = _top_task(mix, task_index)
        for arm in map(int, np.flatnonzero(~np.isnan(scores[i]))):
            if bandit is not None:
                bandit.update(top, arm, float(scores[i, arm]))
            runs.append(
                WarmUpRun(
                    task=line.text,
                    path=(agents[arm],),
                    score=float(scores[i, arm]),
                    cost_usd=float(costs[i, arm]),
                    mixture=dict(mix.weights),
                )
            )
    if colony is not None:
        asyncio.run(colony.warm_up(runs, source=f"eval pool --warm-up {len(lines)}"))


def _colony_for(
    agents: Sequence[str], task_names: Sequence[str], text_mode: bool, clusters: int, seed: int
) -> Any:
    from agentroute.registry import Registry
    from agentroute.routing.colony import AntColony, OnlineClusterIntent

    registry = Registry()
    if not text_mode:
        for name in task_names:
            registry.task(name, description=f"task type {name}")
    for a in agents:
        registry.agent(name=a, description=f"pool member {a}")(_pool_agent)
    intent: Any = (
        OnlineClusterIntent(k=clusters, embedder=_Unused()) if text_mode else _FieldIntent()
    )
    colony = AntColony(intent=intent, stages=dict.fromkeys(agents, 0), seed=seed)
    colony.validate(registry, agents)
    return colony


def _pool_agent(ctx: Any, task: str) -> str:
    return task


class _Unused:
    """The eval embeds every text up front; the colony's intent is never asked to embed."""

    name = "unused"

    def embed(self, texts: Sequence[str]) -> Any:
        msg = "eval pool passes mixtures to the colony directly"
        raise AssertionError(msg)


class _FieldIntent:
    """Mixtures come from the `task` field; the colony's intent is never asked."""

    name = "field"

    async def infer(self, text: str, tasks: Any, complete: Any = None) -> Any:
        msg = "eval pool passes mixtures to the colony directly"
        raise AssertionError(msg)


def pool(
    *,
    outcomes: Annotated[
        Path,
        typer.Option("--outcomes", help="JSON lines {id, text, task?, outcomes, costs?}."),
    ],
    strategy: Annotated[
        PoolStrategy,
        typer.Option(
            "--strategy",
            help="The online router to run; best-single is the reference: the agent with the "
            "best mean score over every line (no outcome = 0), called on every line.",
        ),
    ] = PoolStrategy.ant_colony,
    tasks_from: Annotated[
        TasksFrom | None,
        typer.Option(
            "--tasks-from",
            help="Task types from the lines' `task` field, or inferred from the text "
            "(online k-means over MiniLM embeddings). Default: field when every line has one.",
        ),
    ] = None,
    clusters: Annotated[
        int, typer.Option("--clusters", min=1, help="Task types inferred with --tasks-from text.")
    ] = 12,
    warm_up: Annotated[
        int,
        typer.Option(
            "--warm-up",
            min=0,
            help="Learn from the first N lines (every recorded outcome) before serving; only "
            "the rest are streamed and measured.",
        ),
    ] = 0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of sampling and exploration.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Stream the queries once, in file order, through an online learning router over a pool.

    Prints quality, cost and cumulative regret against the best single agent in hindsight and
    the per-query oracle. The best single agent is the one with the highest mean score over
    every line, a line where it has no recorded outcome counting 0; `--strategy best-single`
    calls it on every line (regret 0).
    """
    lines = read_outcomes(outcomes)
    if not as_json:
        stderr().print(f"{len(lines)} queries; routing with {strategy.value} ...", markup=False)
    report = evaluate_pool(
        lines, strategy, tasks_from=tasks_from, clusters=clusters, seed=seed, warm_up=warm_up
    )
    if as_json:
        echo_json(report.as_json())
        return
    from rich.table import Table

    after = f" after a warm-up on {report.warm_up}" if report.warm_up else ""
    table = Table(title=f"eval pool — {report.strategy}, {report.n} queries{after}")
    for col in ("", "quality", "cost $", "regret vs best single", "regret vs oracle"):
        table.add_column(col, justify="right" if col else "left")
    table.add_row(
        report.strategy,
        f"{report.quality:.4f}",
        f"{report.cost:.6g}",
        f"{report.regret:.1f}",
        f"{report.regret_oracle:.1f}",
    )
    table.add_row(
        f"best single ({report.best_single})",
        f"{report.best_single_quality:.4f}",
        f"{report.best_single_cost:.6g}",
        "0",
        "",
    )
    table.add_row("oracle (per query)", f"{report.oracle_quality:.4f}", "", "", "0")
    console = stdout()
    console.print(table)
    console.print(
        "picks: " + ", ".join(f"{a} {c}" for a, c in report.picks.items() if c), markup=False
    )


def register(app: typer.Typer) -> None:
    """Add the `pool` command to `agentroute eval`."""
    app.command("pool")(pool)
