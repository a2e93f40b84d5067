"""`AntColony`: the agent slot as ant-colony path selection over a layered agent graph (AMRO-S).

At each step the colony stands at a node of the graph (`START`, then the agent that acted at
the previous stage) and picks the next agent among the node's successors:

- the query's task mixture w(q) is inferred once per run (`IntentModel`) and recorded;
- fused pheromone per edge: τ(q)_e = Σ_t w_t(q)·τ̃^t_e, each task table backing off to the
  global (all-task) table while it has little evidence (`PheromoneState.backed_off`);
- heuristic per candidate j: η_j, the weighted geometric mean of ability_j, load_j and speed_j,
  each normalised to (0, 1] over the candidates (ability: a Beta posterior per task from a
  declared prior or the agent's all-task ability plus judged runs, drawn in `sample` mode;
  load = 1/(1 + in-flight branches), speed = 1/(latency EWMA));
- P(j) ∝ τ(q)^α·η^β, sampled with the per-decision seed (or arg-max in `greedy` mode).

Learning is asynchronous and quality-gated (see `_learner.py` and `apply_updates`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import inspect
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import structlog

from agentroute.errors import ConfigurationError, did_you_mean
from agentroute.registry import Registry, TaskSpec
from agentroute.routing._protocol import (
    Candidate,
    Complete,
    Outcome,
    RouteDecision,
    RoutingContext,
)
from agentroute.routing.colony._graph import START, Edge, LayeredGraph, edge_key
from agentroute.routing.colony._intent import (
    DEFAULT_TASK,
    EmbeddingIntent,
    IntentModel,
    LLMIntent,
    Mixture,
    OnlineClusterIntent,
    check_mixture,
)
from agentroute.routing.colony._learner import (
    Judge,
    JudgeThreads,
    LearningError,
    LearningWorker,
    Trajectory,
    WarmUpRun,
)
from agentroute.routing.colony._pheromones import (
    PheromoneBook,
    PheromoneState,
    PheromoneUpdate,
    apply_updates,
)
from agentroute.stores import InMemoryTraceStore, TraceStore, open_store

__all__ = ["AntColony", "Choice"]

log = structlog.get_logger(__name__)

_MAX_PATHS = 4096
"""Paths whose cost EWMA is kept for the cost scale (least recently paid dropped first)."""

_INTENT_FAILED = "intent failed"
"""How a mixture's repairs say the intent model failed (counted by `warm_up`)."""

_INTENTS: dict[str, type] = {
    "embedding": EmbeddingIntent,
    "llm": LLMIntent,
    "online-kmeans": OnlineClusterIntent,
}


@dataclass(frozen=True)
class Choice:
    """One decision of the colony's core, with everything the trace records."""

    node: str
    """Where the path stands (`START` or the previous agent)."""
    candidates: tuple[str, ...]
    pick: str
    probs: np.ndarray
    tau: np.ndarray
    """Fused pheromone τ(q) of the edge to each candidate."""
    eta: np.ndarray
    """Heuristic η of each candidate."""
    eta_parts: dict[str, np.ndarray]
    """The normalised ability, load and speed terms of η."""
    version: int
    """Pheromone version used."""
    exploited: bool = False
    """Whether the pick was the arg-max (probability `q0`, or greedy mode) or a draw."""
    ability_mean: np.ndarray | None = None
    """Posterior mean ability of each candidate for the query's mixture (before any draw)."""


@dataclass
class _RunMemo:
    mixture: Mixture
    version: int
    last_agent: str | None = None
    last_time: float = 0.0
    started: float = 0.0


def _judge_ref(judge: object) -> str | None:
    """The judge as `module:qualname` (what `_resolve_judge` imports back), or its type name."""
    if judge is None:
        return None
    module = getattr(judge, "__module__", None)
    qualname = getattr(judge, "__qualname__", None)
    if isinstance(module, str) and isinstance(qualname, str):
        return f"{module}:{qualname}"
    return type(judge).__name__


def _resolve_judge(judge: Judge | str | None) -> Judge | None:
    if judge is None or callable(judge):
        return judge
    module, _, attr = judge.partition(":")
    try:
        found = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        msg = f"judge {judge!r} must be 'module:function' naming an importable callable: {exc}"
        raise ConfigurationError(msg) from exc
    if not callable(found):
        msg = f"judge {judge!r} is not callable"
        raise ConfigurationError(msg)
    return found  # type: ignore[no-any-return]


def _number_in(value: object, upper: float = 1.0) -> float | None:
    """`value` as a finite number in `[0, upper]`, or `None` when it is anything else."""
    if value is None or isinstance(value, (str, bytes)):
        return None  # float("1") would pass, but a judge or a label gives a bool or a number
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    ok = 0.0 <= number <= upper and not math.isinf(number)  # NaN fails the comparisons
    return number if ok else None


def _checked_run(
    i: int, run: WarmUpRun, graph: LayeredGraph, edges: set[Edge], tasks: Sequence[str]
) -> tuple[WarmUpRun, Mixture | None]:
    """`run` with its numbers as floats and its given mixture checked.

    Raises `ConfigurationError` naming run `i` and the fix.
    """
    where = f"AntColony.warm_up: run {i}"
    if not isinstance(run, WarmUpRun):
        msg = f"{where} is a {type(run).__name__}; pass WarmUpRun objects"
        raise ConfigurationError(msg)
    if not isinstance(run.task, str):
        msg = f"{where}: task must be the request text (a str), not {type(run.task).__name__}"
        raise ConfigurationError(msg)
    path = tuple(run.path) if isinstance(run.path, (list, tuple)) else ()
    if not path or not all(isinstance(a, str) for a in path):
        msg = f"{where}: path must be a non-empty sequence of agent names, got {run.path!r}"
        raise ConfigurationError(msg)
    prev = START
    for agent in path:
        if (prev, agent) not in edges:
            hint = did_you_mean(agent, list(graph.stages)) if agent not in graph.stages else ""
            nexts = list(graph.successors(prev))
            msg = (
                f"{where}: {edge_key((prev, agent))} is not an edge of the agent graph{hint}; "
                f"after {prev} the path may go to {nexts}"
            )
            raise ConfigurationError(msg)
        prev = agent
    score = _checked_number(where, "score", run.score, upper=1.0)
    cost = _checked_number(where, "cost_usd", run.cost_usd)
    latency = None if run.latency_s is None else _checked_number(where, "latency_s", run.latency_s)
    checked = dataclasses.replace(run, path=path, score=score, cost_usd=cost, latency_s=latency)
    return checked, _checked_mixture(where, run.mixture, tasks)


def _checked_mixture(where: str, raw: object, tasks: Sequence[str]) -> Mixture | None:
    """A given mixture over known tasks with usable weights, rescaled to sum to one.

    Anything else is a `ConfigurationError`: offline data can be fixed, so nothing is silently
    repaired to a uniform mixture.
    """
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        msg = f"{where}: mixture must be a mapping task → weight, got {type(raw).__name__}"
        raise ConfigurationError(msg)
    for name in raw:
        if name not in tasks:
            msg = (
                f"{where}: mixture names unknown task {name!r}"
                f"{did_you_mean(str(name), list(tasks))}; the tasks are {list(tasks)}"
            )
            raise ConfigurationError(msg)
    mix = check_mixture(raw, tasks, "warm-up")
    unusable = [r for r in mix.repairs if not r.startswith("weights summed to")]
    if unusable:
        msg = f"{where}: mixture {dict(raw)!r} is not usable: {'; '.join(unusable)}"
        raise ConfigurationError(msg)
    return mix


def _checked_number(where: str, name: str, value: object, upper: float = math.inf) -> float:
    """`value` as a finite float in `[0, upper]`, or a `ConfigurationError`."""
    number = _number_in(value, upper)
    if number is None:
        bounds = "in [0, 1]" if upper == 1.0 else "a finite number >= 0"
        msg = f"{where}: {name} must be {bounds}, got {value!r}"
        raise ConfigurationError(msg)
    return number


def _check_params(values: Mapping[str, Any]) -> None:
    rules: dict[str, Callable[[Any], bool]] = {
        "alpha": lambda v: v >= 0,
        "beta": lambda v: v >= 0,
        "rho": lambda v: 0 < v <= 1,
        "q": lambda v: v > 0,
        "epsilon": lambda v: v > 0,
        "tau_min_ratio": lambda v: 0 < v <= 1,
        "sample_rate": lambda v: 0 <= v <= 1,
        "buffer_size": lambda v: v >= 1,
        "batch_size": lambda v: v >= 1,
        "judge_timeout_s": lambda v: v > 0,
        "gate_threshold": lambda v: 0 <= v <= 1,
        "mode": lambda v: v in ("sample", "greedy"),
        "q0": lambda v: 0 <= v <= 1,
        "ability_rho": lambda v: v is None or 0 <= v <= 1,
        "change_rho": lambda v: v is None or 0 < v <= 1,
        "change_z": lambda v: v is None or v > 0,
        "ability_weight": lambda v: v > 0,
        "ability_backoff": lambda v: v > 0,
        "latency_halflife": lambda v: v > 0,
        "max_pending": lambda v: v >= 1,
    }
    for name, ok in rules.items():
        if not ok(values[name]):
            msg = f"AntColony: invalid {name}={values[name]!r}"
            raise ConfigurationError(msg)


class AntColony:
    """Agent-slot strategy: pheromone paths over a layered agent graph (AMRO-S).

    Agents declare their stage (`@registry.agent(stage=0)`); edges default to every agent of a
    stage → every agent of the next, and `edges` restricts them. With no stages the agents form
    one pool (a one-stage graph). Task types are the registry's `TaskSpec`s (one implicit task
    when none is declared).

    Parameter choices (AMRO-S publishes no constants; these are ours, see
    docs/concepts/ant-colony.md): τ is an estimate of *accepted utility per unit cost*, so α
    sets how sharply the colony exploits differences in it; β weighs ability, load and speed.

    Args:
        alpha: Exponent α of the fused pheromone τ(q).
        beta: Exponent β of the heuristic η. With the λ defaults, ability enters P with
            exponent β·λ_A = 3.6, load and speed with 0.45 each.
        rho: Evaporation ρ ∈ (0, 1] on a judged path's edges, per unit of task weight.
        q: Deposit constant Q (an accepted path deposits w_t·Q/(f_sys + ε)).
        epsilon: ε of the deposit; with f_sys normalised to about 1, ε = 1 bounds the deposit
            of a free path at Q.
        tau_min_ratio: Floor of τ as a share of the initial value τ0 = Q/(ρ·(1+ε)) (keeps
            every edge explorable, MAX–MIN ant system style).
        mode: `sample` (draw with the per-decision seed) or `greedy` (arg-max).
        q0: In `sample` mode, probability of taking the arg-max of P instead of drawing from
            it (the pseudo-random proportional rule of the Ant Colony System); 0 = always draw.
            Default 1.0: with `ability_draw`, exploration already comes from the ability
            posterior (uncertain agents get tried, in proportion to their uncertainty), and
            the extra ACS draws from P only cost accuracy. Chosen on the tuning seeds 101–105
            of `benchmarks/aco.py`: mean accuracy of the text-clustered colony 0.603 (q0 0.9),
            0.610 (0.95), 0.615 (1.0); with declared tasks 0.585 / 0.596 / 0.594; part (b)
            drift recovery and quality under load as good or better at seeds 101/102.
            Lower it to add exploration; with `ability_draw=False` and q0 = 1 the colony
            never explores.
        sample_rate: Share r of finished runs that enter the learning buffer (feedback always
            enters).
        buffer_size: Capacity |B| of the learning buffer; the oldest entry is dropped beyond it.
        batch_size: Trajectories judged and committed per store write.
        judge: Quality gate for runs without a feedback score: a callable (sync or async),
            `"module:function"`, or an `LLMJudge`; `None` = learn only from feedback scores.
        judge_timeout_s: A judge slower than this is abandoned (the trajectory is skipped and
            the timeout recorded). A sync judge runs on the colony's own judge threads (at
            most `JUDGE_THREADS` = 4); a call that hangs keeps its thread, and while all of
            them are stuck, trajectories needing the judge are skipped as "judge busy".
        gate_threshold: A verdict or feedback score ≥ this accepts the trajectory.
        intent: `IntentModel` or `embedding` / `llm` / `online-kmeans`; default `embedding`.
        intent_params: Keyword arguments of the intent named by `intent` (e.g. `{"k": 8}` for
            `online-kmeans`); recorded with the other parameters, so a recorded router is
            rebuilt with the same intent.
        ability: Declared ability priors, agent → task → [0, 1] (default 0.5).
        ability_weight: Pseudo-count of a declared ability prior against judged runs (2: a
            declaration is a hint that a few runs overturn, which is what lets the colony
            notice a degraded agent quickly in the drift benchmark).
        ability_backoff: Pseudo-count of the back-off prior of an undeclared (agent, task)
            pair — the agent's ability over all tasks — against that task's own judged runs.
            10 was chosen on the tuning setup of `benchmarks/aco.py` (seeds 101–105): with the
            informative all-task prior, 10 beat 2 (the old uninformative weight) by 0.4–1.3
            accuracy points for the text-clustered colony (0.603–0.609 vs 0.596–0.599 mean),
            and 30 was worse again (0.601): a task needs about ten runs of its own before
            its estimate leaves the pool's.
        ability_draw: In `sample` mode, draw each candidate's ability from its Beta posterior
            (seeded per decision) instead of using the posterior mean — Thompson-style
            exploration in proportion to uncertainty. Without it, an agent whose first two
            runs failed (2 of 9 pool models hit that on the tuning seeds) sank to ability
            0.25 and was almost never tried again, and the colony settled on a cheaper, worse
            model; the ε-style draws of `q0` alone, spread over 9 candidates, did not get it
            back. The draw is recorded (`ability`) next to the posterior mean
            (`ability_mean`) in every decision.
        ability_rho: Evaporation of the ability evidence per judged run (so a degraded agent
            is noticed); default ρ/10, a memory about ten times longer than τ's (~200 runs).
            With the offline warm-up and 12 text clusters, ρ/10 scored +0.0018 ± 0.0009
            (paired, 30 tuning seeds) over ρ/4 on `benchmarks/aco.py` part (a); the change
            test (`change_z`) does the fast reaction to a drift that a short memory used to.
        change_z: Change test on ability (`None` = off). After each judged run, an agent's
            accepted rate over a recent window (`change_rho`) is compared with its older
            evidence (the ability evidence minus the window) by a two-proportion z-test; when
            |z| exceeds `change_z` (both sides holding at least `CHANGE_MIN_RUNS` = 8
            mixture-weighted runs), the agent's evidence for that task is replaced by the
            window, so a degraded (or improved) agent is re-estimated from its recent runs at
            once instead of over the ~1/`ability_rho` runs evaporation takes. At 3.0 it never
            fired on 36,000 stationary judged runs (success rates 0.5–0.9, one-hot and mixed
            tasks), and left `benchmarks/aco.py` part (a) unchanged on every tuning seed;
            on part (b) it cut the settling time after the drift with 20 in flight on the
            tuning seeds 101 / 102 / 103 from 1,086 / 327 / 250 requests to 392 / 276 / 248
            at the same quality (±0.006).
        change_rho: Evaporation of the change test's recent window per judged run; default
            ρ, the memory of τ (~20 runs).
        lambda_ability: λ_A, weight of ability in η.
        lambda_load: λ_L, weight of live load in η.
        lambda_latency: λ_R, weight of response time in η. Defaults 0.8 / 0.1 / 0.1 with
            β = 4.5 (before: 0.6 / 0.2 / 0.2 with β = 6, the same ability exponent 3.6), chosen
            on the tuning seeds 101–105 of `benchmarks/aco.py` part (b): load `1/(1 + n)` and
            speed weighed 1.2 each let a few requests in flight, or a fast but worse agent,
            outweigh a real quality gap, so with 20 in flight the colony scored 0.687 mean
            quality, below ε-greedy (0.770). At 0.1 each: 0.805 with 20 in flight, 0.630 (was
            0.644) with 1,000; at 0.05 each: 0.840 but 0.489 with 1,000 (load no longer
            spreads an overloaded agent). One-stage pools without load or latency (part (a))
            are unchanged: there η is ability alone, with the same exponent.
        cost_weight: Weight of normalised token cost in f_sys(P). With the cost scale at the
            dearest path (see `path_cost`) and ε = 1, cost changes a deposit by at most a
            factor 1 + `cost_weight`, so a cheaper path wins only when its accepted rate is
            within ~5% (× the sharper η) of a dearer one: quality first, cost as the
            tie-breaker. 0.05 was chosen on the tuning seeds 101–105 (with q0 = 1): mean
            accuracy 0.615 vs 0.608 at 0.1 and 0.615 at 0 for the text-clustered colony,
            0.594 vs 0.589 / 0.594 with declared tasks; cost still 15% below the best single
            model's. (At q0 = 0.9, 0.1 beat 0.2: 0.599 vs 0.593.)
        latency_weight: Weight of normalised latency in f_sys(P).
        cost_scale: USD that counts as cost 1 in f_sys; `None` = the typical cost of the
            dearest path seen (largest per-path cost EWMA), not the mean of the chosen paths
            (which fed back on itself: see `path_cost`).
        latency_scale: Seconds that count as latency 1; `None` = the running mean.
        latency_halflife: Decisions over which the per-agent latency EWMA halves.
        stages: Agent → stage, overriding `AgentSpec.stage` (also limits the graph's agents).
        edges: Allowed transitions, `["a->b", ...]` (`__start__->a` for first-stage entries).
        store: Trace store (or URL) holding the pheromone tables; default a private in-memory
            store. `Router` users pass the router's store to share it across processes.
        key: Learned-state key; default `ant-colony/<sorted agent names joined by +>` (cut at
            200 characters). The default changes when an agent is added or removed, and the
            new key starts empty (a warning names the keys already stored); pass a fixed `key`
            to keep the tables, which are then reconciled with the new agents.
        refresh_s: How often the tables written by other processes are re-read: by the
            learning worker, and in the background of `route` (which never waits for it), so
            a process that only serves sees what others learned too.
        max_pending: Runs whose routing memo is kept until they finish (oldest evicted).
        seed: Seed of the learning sampler.
    """

    name: ClassVar[str] = "ant-colony"
    version: ClassVar[str] = "2"

    def __init__(  # noqa: PLR0915 - one assignment per documented parameter
        self,
        *,
        alpha: float = 1.0,
        beta: float = 4.5,
        rho: float = 0.05,
        q: float = 1.0,
        epsilon: float = 1.0,
        tau_min_ratio: float = 0.05,
        mode: Literal["sample", "greedy"] = "sample",
        q0: float = 1.0,
        sample_rate: float = 1.0,
        buffer_size: int = 1024,
        batch_size: int = 32,
        judge: Judge | str | None = None,
        judge_timeout_s: float = 30.0,
        gate_threshold: float = 0.5,
        intent: IntentModel | str | None = None,
        intent_params: Mapping[str, Any] | None = None,
        ability: Mapping[str, Mapping[str, float]] | None = None,
        ability_weight: float = 2.0,
        ability_backoff: float = 10.0,
        ability_draw: bool = True,
        ability_rho: float | None = None,
        change_z: float | None = 3.0,
        change_rho: float | None = None,
        lambda_ability: float = 0.8,
        lambda_load: float = 0.1,
        lambda_latency: float = 0.1,
        cost_weight: float = 0.05,
        latency_weight: float = 0.5,
        cost_scale: float | None = None,
        latency_scale: float | None = None,
        latency_halflife: float = 20.0,
        stages: Mapping[str, int] | None = None,
        edges: Sequence[str] | None = None,
        store: TraceStore | str | None = None,
        key: str | None = None,
        refresh_s: float = 5.0,
        max_pending: int = 10_000,
        seed: int = 0,
    ) -> None:
        _check_params(locals())
        if intent_params is not None and not isinstance(intent, str):
            msg = (
                "AntColony: intent_params apply to an intent given by name (intent='online-kmeans')"
            )
            raise ConfigurationError(msg)
        if isinstance(intent, str):
            if intent not in _INTENTS:
                msg = f"AntColony: unknown intent {intent!r}{did_you_mean(intent, list(_INTENTS))}"
                raise ConfigurationError(msg)
            try:
                intent_model: IntentModel = _INTENTS[intent](**dict(intent_params or {}))
            except (TypeError, ValueError) as exc:
                given = dict(intent_params or {})
                msg = f"AntColony: bad intent_params {given!r} for intent {intent!r}: {exc}"
                raise ConfigurationError(msg) from exc
        else:
            intent_model = intent if intent is not None else EmbeddingIntent()
        self.alpha, self.beta, self.rho, self.q, self.epsilon = alpha, beta, rho, q, epsilon
        self.tau0 = q / (rho * (1.0 + epsilon))
        self.tau_min = self.tau0 * tau_min_ratio
        self.tau_max = q / (rho * epsilon)
        self.tau_min_ratio = tau_min_ratio
        self.mode, self.q0, self.sample_rate = mode, q0, sample_rate
        self.ability_rho = rho / 10 if ability_rho is None else ability_rho
        self.change_z, self.change_rho = change_z, rho if change_rho is None else change_rho
        self.buffer_size, self.batch_size = buffer_size, batch_size
        self.judge = _resolve_judge(judge)
        self.judge_timeout_s, self.gate_threshold = judge_timeout_s, gate_threshold
        self.intent = intent_model
        self.ability = {a: dict(t) for a, t in (ability or {}).items()}
        self.ability_weight, self.ability_backoff = ability_weight, ability_backoff
        self.ability_draw = ability_draw
        self.lambdas = (lambda_ability, lambda_load, lambda_latency)
        self.cost_weight, self.latency_weight = cost_weight, latency_weight
        self.cost_scale, self.latency_scale = cost_scale, latency_scale
        self.latency_halflife = latency_halflife
        self.stages_param = dict(stages) if stages is not None else None
        self.edges_param = list(edges) if edges is not None else None
        self._store_arg = store
        self.key_param = key
        self.refresh_s, self.max_pending, self.seed = refresh_s, max_pending, seed
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()
        self._runs: OrderedDict[str, _RunMemo] = OrderedDict()
        self._latency: dict[str, float] = {}
        self._cost_ref: float | None = None
        self._latency_ref: float | None = None
        self._path_cost: OrderedDict[tuple[str, ...], float] = OrderedDict()
        self.errors: deque[LearningError] = deque(maxlen=200)
        """The latest learning errors (judge, intent, commit, refresh), newest last."""
        self.reconciled: list[str] = []
        """Changes applied when stored tables did not match the graph (agents added/removed)."""
        self.counters: dict[str, int] = {
            "decisions": 0,
            "runs_evicted": 0,
            "skipped_unsampled": 0,
            "skipped_no_judge": 0,
            "judged": 0,
            "accepted": 0,
            "rejected": 0,
            "judge_errors": 0,
            "learn_errors": 0,
            "commit_errors": 0,
            "warmed_up": 0,
        }
        self.graph: LayeredGraph | None = None
        self.tasks: tuple[TaskSpec, ...] = ()
        self.book: PheromoneBook | None = None
        self._state: PheromoneState | None = None
        self._prior: np.ndarray | None = None
        self._declared: np.ndarray | None = None  # which (task, agent) priors were declared
        self._start_background()

    def _start_background(self) -> None:
        self._shared_store = self._store_arg is not None
        self._judge_threads = JudgeThreads()
        self._refresh_lock = threading.Lock()
        self._refreshing = False
        self._next_refresh = 0.0
        self.worker = LearningWorker(
            self.learn_batch,
            buffer_size=self.buffer_size,
            batch_size=self.batch_size,
            idle=self._refresh_async,
            idle_s=self.refresh_s,
        )

    # -- configuration -----------------------------------------------------------------------

    def params(self) -> dict[str, Any]:
        """The strategy's parameters, JSON-ready (recorded with every decision).

        They are constructor arguments, so `build_strategy` (and `Router.from_config`, which
        replays use) rebuilds the same colony from a recorded config. Two things are recorded
        by reference only: the judge as `module:function` (a lambda, a closure or an
        `LLMJudge` cannot be rebuilt from it: rebuilding fails with a `ConfigurationError`
        that names it) and an intent model given as an object, by its name.
        """
        intent_params = getattr(self.intent, "params", None)
        la, ll, lr = self.lambdas
        return {
            "alpha": self.alpha,
            "beta": self.beta,
            "rho": self.rho,
            "q": self.q,
            "epsilon": self.epsilon,
            "tau_min_ratio": self.tau_min_ratio,
            "mode": self.mode,
            "q0": self.q0,
            "ability_rho": self.ability_rho,
            "change_z": self.change_z,
            "change_rho": self.change_rho,
            "sample_rate": self.sample_rate,
            "buffer_size": self.buffer_size,
            "batch_size": self.batch_size,
            "judge": _judge_ref(self.judge),
            "judge_timeout_s": self.judge_timeout_s,
            "gate_threshold": self.gate_threshold,
            "intent": self.intent.name,
            "intent_params": intent_params() if callable(intent_params) else None,
            "ability": {a: dict(t) for a, t in self.ability.items()},
            "ability_weight": self.ability_weight,
            "ability_backoff": self.ability_backoff,
            "ability_draw": self.ability_draw,
            "lambda_ability": la,
            "lambda_load": ll,
            "lambda_latency": lr,
            "cost_weight": self.cost_weight,
            "latency_weight": self.latency_weight,
            "cost_scale": self.cost_scale,
            "latency_scale": self.latency_scale,
            "latency_halflife": self.latency_halflife,
            "stages": self.stages_param,
            "edges": self.edges_param,
            "key": self.key_param,
            "refresh_s": self.refresh_s,
            "max_pending": self.max_pending,
            "seed": self.seed,
        }

    def validate(self, registry: Registry, agents: Sequence[str]) -> None:
        """Build and check the layered graph, then load (or create) the pheromone tables.

        Called by `Router.compile()`; call it yourself when driving the colony directly.
        Tables stored for another registry version (agents or tasks added or removed) are
        reconciled: surviving values are kept, new edges start at τ0, and the changes are
        listed in `reconciled` and written with the next version.

        Raises:
            ConfigurationError: A cycle, an unreachable stage or agent, an unknown agent in
                `stages`, `edges` or `ability`, or a task type with nothing to recognise it by.
        """
        graph = LayeredGraph.from_registry(
            registry, agents, stages=self.stages_param, edges=self.edges_param
        )
        if isinstance(self.intent, OnlineClusterIntent):
            tasks = tuple(TaskSpec(name=n) for n in self.intent.task_names)
        else:
            tasks = tuple(registry.tasks.values()) or (TaskSpec(name=DEFAULT_TASK),)
            if isinstance(self.intent, EmbeddingIntent) and len(tasks) > 1:
                blank = [t.name for t in tasks if not t.examples and not t.description]
                if blank:
                    msg = (
                        f"task type(s) {blank} have no examples or description, so the "
                        "embedding intent cannot recognise them; register them with "
                        "`registry.task(name, examples=[...])`"
                    )
                    raise ConfigurationError(msg)
        task_names = [t.name for t in tasks]
        for agent, per_task in self.ability.items():
            if agent not in graph.stages:
                hint = did_you_mean(agent, list(graph.stages))
                msg = f"AntColony ability names unknown agent {agent!r}{hint}"
                raise ConfigurationError(msg)
            for task, value in per_task.items():
                if task not in task_names:
                    hint = did_you_mean(task, task_names)
                    msg = f"AntColony ability of {agent!r} names unknown task {task!r}{hint}"
                    raise ConfigurationError(msg)
                if not 0 <= value <= 1:
                    msg = f"AntColony ability of {agent!r} for {task!r} must be in [0, 1]: {value}"
                    raise ConfigurationError(msg)
        self.graph = graph
        self.tasks = tasks
        agent_names = graph.agents
        self._prior = np.array(
            [[self.ability.get(a, {}).get(t, 0.5) for a in agent_names] for t in task_names]
        )
        self._declared = np.array(
            [[t in self.ability.get(a, {}) for a in agent_names] for t in task_names], dtype=bool
        )
        store = self._store_arg
        if store is None:
            store = InMemoryTraceStore()
        elif isinstance(store, str):
            store = open_store(store)
        self._store_arg = store
        key = self.key_param or f"ant-colony/{'+'.join(sorted(agent_names))[:200]}"
        others = [] if self.key_param else PheromoneBook.known_keys(store)
        self.key_param = key
        self.book = PheromoneBook(store, key)
        loaded = self.book.load()
        others = [k for k in others if k != key]
        if loaded is None and others:
            # The default key follows the agent list, so adding or removing an agent starts
            # from empty tables; say so, since reconciliation only happens under one key.
            log.warning(
                "ant colony starts from empty pheromone tables under a new default key; pass "
                "key= naming the old key to keep (and reconcile) what it learned",
                key=key,
                stored_keys=others,
            )
        self.book.register()
        self._state = self._prepare(loaded)
        self._next_refresh = time.monotonic() + self.refresh_s

    def bind_store(self, store: TraceStore) -> None:
        """Use `store` for the pheromone tables when none was given (the router's store)."""
        if self._store_arg is None:
            self._store_arg = store
            self._shared_store = True

    def _prepare(self, loaded: PheromoneState | None) -> PheromoneState:
        graph = self._require_graph()
        names = [t.name for t in self.tasks]
        if loaded is None:
            fitted = PheromoneState.fresh(names, graph.edges, graph.agents, self.tau0)
        else:
            fitted, changes = loaded.reconcile(names, graph.edges, graph.agents, self.tau0)
            if changes:
                note = f"reconciled with registry: {'; '.join(changes)}"
                if note not in self.reconciled:
                    self.reconciled.append(note)
                    log.warning("pheromone tables reconciled", key=self.key_param, changes=changes)
                fitted.meta["reconciled"] = [*fitted.meta.get("reconciled", [])[-9:], note]
        # Stored with every version, so readers of the store (`agentroute pheromones show`)
        # can rebuild the tables decisions use (`PheromoneState.effective`).
        fitted.meta["tau"] = {"tau0": self.tau0, "min": self.tau_min, "max": self.tau_max}
        return fitted

    def _ability(
        self, state: PheromoneState, acols: Sequence[int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Beta posterior `(a, b)` of the ability of each (task, candidate).

        The prior of a declared (agent, task) pair is the declared value, worth
        `ability_weight` runs; otherwise it is the agent's global ability (all tasks together,
        itself shrunk towards the mean declared value, 0.5 by default), worth `ability_backoff`
        runs, so a rare task inherits what was learned on every task. The judged (evaporated)
        outcomes of the task are added.
        """
        prior = self._prior if self._prior is not None else np.full(state.ability_n.shape, 0.5)
        declared = (
            self._declared if self._declared is not None else np.zeros(prior.shape, dtype=bool)
        )
        k0 = self.ability_weight
        p0 = prior[:, acols].mean(axis=0)
        overall = (p0 * k0 + state.ability_sum_all[acols]) / (k0 + state.ability_n_all[acols])
        base = np.where(declared[:, acols], prior[:, acols], overall[None, :])
        k = np.where(declared[:, acols], k0, self.ability_backoff)
        n = state.ability_n[:, acols]
        wins = np.minimum(state.ability_sum[:, acols], n)
        a = np.maximum(base * k + wins, 1e-6)
        b = np.maximum((1.0 - base) * k + n - wins, 1e-6)
        return a, b

    def _require_graph(self) -> LayeredGraph:
        if self.graph is None:
            msg = "AntColony is not validated yet: Router.compile() (or validate()) first"
            raise ConfigurationError(msg)
        return self.graph

    @property
    def state(self) -> PheromoneState:
        """The serving snapshot of the tables (replaced whole, never mutated)."""
        if self._state is None:
            self._require_graph()
        assert self._state is not None
        return self._state

    # -- deciding ----------------------------------------------------------------------------

    def check(self, raw: Mapping[str, Any], source: str = "") -> Mixture:
        """Validate a raw mixture against the colony's task types (see `check_mixture`)."""
        return check_mixture(raw, [t.name for t in self.tasks], source)

    def decide(
        self,
        node: str,
        candidates: Sequence[str],
        mixture: Mixture,
        load: Mapping[str, int] | None = None,
        seed: int | None = None,
        *,
        greedy: bool | None = None,
    ) -> Choice:
        """The colony's core decision: P ∝ τ(q)^α·η^β over `candidates` after `node`.

        Synchronous and allocation-light; `route` calls it, and so may simulations.
        """
        state = self.state
        graph = self._require_graph()
        w = mixture.vector(state.tasks)
        e_index, a_index = state.indexes()
        cols = [e_index[(node, c)] for c in candidates]
        acols = [a_index[c] for c in candidates]
        tables = np.clip(state.backed_off(self.tau0, cols), self.tau_min, self.tau_max)
        tau = np.maximum(w @ tables, 1e-12)
        use_greedy = self.mode == "greedy" if greedy is None else greedy
        rng = np.random.default_rng(seed)
        a, b = self._ability(state, acols)
        ability_mean = w @ (a / (a + b))
        if self.ability_draw and not use_greedy and len(candidates) > 1:
            # Thompson-style: a draw from the posterior explores in proportion to uncertainty
            # (an agent with little evidence gets high draws now and then, a well-known one
            # stays near its mean); only the tasks in the mixture are drawn.
            used = np.flatnonzero(w > 0)
            draws = np.zeros(a.shape)
            draws[used] = rng.beta(a[used], b[used])
            ability = w @ draws
        else:
            ability = ability_mean
        load = load or {}
        inv_load = np.array([1.0 / (1.0 + max(0, load.get(c, 0))) for c in candidates])
        known = [v for v in self._latency.values() if v > 0]
        default_lat = float(np.mean(known)) if known else 1.0
        lat = np.array([self._latency.get(c, default_lat) for c in candidates])
        speed = 1.0 / (lat + 1e-3)
        parts = {
            "ability": ability / max(ability.max(), 1e-12),
            "load": inv_load / inv_load.max(),
            "speed": speed / speed.max(),
        }
        la, ll, lr = self.lambdas
        # Weighted geometric mean, not a weighted sum: a term equal for every candidate (no
        # load anywhere) then drops out instead of diluting the others.
        log_eta = (
            la * np.log(np.maximum(parts["ability"], 1e-9))
            + ll * np.log(parts["load"])
            + lr * np.log(parts["speed"])
        ) / max(la + ll + lr, 1e-12)
        eta = np.exp(log_eta)
        logits = self.alpha * np.log(tau) + self.beta * log_eta
        logits -= logits.max()
        probs = np.exp(logits)
        probs /= probs.sum()
        exploit = use_greedy or len(candidates) == 1 or rng.random() < self.q0
        if exploit:
            k = int(np.argmax(probs))
        else:
            u = rng.random()
            k = min(int(np.searchsorted(np.cumsum(probs), u, side="right")), len(probs) - 1)
        del graph
        return Choice(
            node=node,
            candidates=tuple(candidates),
            pick=candidates[k],
            probs=probs,
            tau=tau,
            eta=eta,
            eta_parts=parts,
            ability_mean=ability_mean,
            version=state.version,
            exploited=bool(exploit),
        )

    async def infer(self, text: str, complete: Any = None) -> Mixture:
        """Infer and validate the task mixture of `text`; failures become a uniform mixture."""
        names = [t.name for t in self.tasks]
        if len(names) == 1:
            return Mixture({names[0]: 1.0}, source="single-task")
        try:
            raw = await self.intent.infer(text, self.tasks, complete)
        except Exception as exc:  # intent failure must not fail the run
            self._record("", "intent", exc)
            return Mixture(
                dict.fromkeys(names, 1.0 / len(names)),
                source=self.intent.name,
                repairs=(f"{_INTENT_FAILED} ({type(exc).__name__}); using a uniform mixture",),
            )
        mix = check_mixture(raw.weights, names, raw.source)
        return Mixture(mix.weights, mix.source, (*raw.repairs, *mix.repairs), raw.extra)

    async def route(self, ctx: RoutingContext) -> RouteDecision:
        """Pick the next agent of the path (or finish when the path is complete)."""
        graph = self._require_graph()
        now = time.monotonic()
        self._kick_refresh(now)
        memo = self._runs.get(ctx.run_id)
        if memo is None:
            mixture = await self.infer(ctx.task, ctx.complete)
            memo = _RunMemo(mixture, self.state.version, started=now)
            with self._lock:
                self._runs[ctx.run_id] = memo
                while len(self._runs) > self.max_pending:
                    self._runs.popitem(last=False)
                    self.counters["runs_evicted"] += 1
        node = START
        for step in reversed(ctx.history):
            acted = [a for a in step.agents if a in graph.stages]
            if acted:
                node = acted[0]
                break
        if memo.last_agent is not None and memo.last_time:
            self._observe_latency(memo.last_agent, now - memo.last_time)
        successors = graph.successors(node)
        if not successors:
            return RouteDecision.finish(
                reason=f"path complete: {node} is on the last stage",
                mixture=memo.mixture.evidence(),
            )
        allowed = [a for a in successors if a in ctx.candidates]
        if not allowed:
            reason = f"none of {list(successors)} (successors of {node}) may be chosen here"
            if node == START:
                return RouteDecision.out_of_scope(reason=reason, mixture=memo.mixture.evidence())
            return RouteDecision.finish(reason=reason, mixture=memo.mixture.evidence())
        choice = self.decide(node, allowed, memo.mixture, ctx.load, ctx.seed)
        self.counters["decisions"] += 1
        memo.last_agent, memo.last_time = choice.pick, time.monotonic()
        then: Literal["finish", "route"] = "route" if graph.successors(choice.pick) else "finish"
        return self._decision(choice, memo.mixture, then, ctx.load)

    def _decision(
        self,
        choice: Choice,
        mixture: Mixture,
        then: Literal["finish", "route"],
        load: Mapping[str, int],
    ) -> RouteDecision:
        graph = self._require_graph()
        candidates = [
            Candidate(
                name=c,
                score=round(float(choice.probs[i]), 6),
                detail={
                    "tau": round(float(choice.tau[i]), 6),
                    "eta": round(float(choice.eta[i]), 6),
                    "ability": round(float(choice.eta_parts["ability"][i]), 6),
                    "ability_mean": round(float(choice.ability_mean[i]), 6)
                    if choice.ability_mean is not None
                    else None,
                    "load": int(load.get(c, 0)),
                    "latency_s": round(self._latency.get(c, 0.0), 6),
                    "edge": edge_key((choice.node, c)),
                },
            )
            for i, c in enumerate(choice.candidates)
        ]
        stage = graph.stages[choice.pick]
        how = "greedy" if self.mode == "greedy" else "sampled"
        p_pick = float(choice.probs[list(choice.candidates).index(choice.pick)])
        top = max(mixture.weights, key=mixture.weights.__getitem__)
        reason = (
            f"stage {stage}: {how} {choice.pick} (P={p_pick:.2f}) from {choice.node}; "
            f"top task {top}"
        )
        return RouteDecision.to(
            choice.pick,
            then=then,
            reason=reason,
            candidates=candidates,
            evidence={
                "mixture": mixture.evidence(),
                "fused_tau": {
                    c: round(float(t), 6)
                    for c, t in zip(choice.candidates, choice.tau, strict=True)
                },
                "eta": {
                    c: round(float(e), 6)
                    for c, e in zip(choice.candidates, choice.eta, strict=True)
                },
                "probs": {
                    c: round(float(p), 6)
                    for c, p in zip(choice.candidates, choice.probs, strict=True)
                },
                "pick": choice.pick,
                "from": choice.node,
                "stage": stage,
                "mode": self.mode,
                "exploited": choice.exploited,
                "pheromone_version": choice.version,
                "pheromone_key": self.key_param,
            },
        )

    def _observe_latency(self, agent: str, seconds: float) -> None:
        a = 1.0 - 0.5 ** (1.0 / self.latency_halflife)
        old = self._latency.get(agent)
        self._latency[agent] = seconds if old is None else (1 - a) * old + a * seconds

    def observe_latency(self, agent: str, seconds: float) -> None:
        """Feed one measured response time of `agent` into its EWMA (simulations use this)."""
        self._observe_latency(agent, seconds)

    # -- learning ----------------------------------------------------------------------------

    async def learn(self, outcome: Outcome) -> None:
        """Take in a finished run or feedback. Returns at once: learning is in the background.

        A run-end outcome is sampled (rate `sample_rate`) and needs a `judge`; a feedback
        outcome (with a score) always enters the buffer and is gated by its score.
        """
        graph = self._require_graph()
        with self._lock:
            memo = self._runs.pop(outcome.run_id, None)
        now = time.monotonic()
        self._kick_refresh(now)
        if memo is not None and memo.last_agent is not None and memo.last_time:
            self._observe_latency(memo.last_agent, now - memo.last_time)
        path = tuple(
            next(a for a in step if a in graph.stages)
            for step in outcome.steps
            if any(a in graph.stages for a in step)
        )
        if not path:
            return
        if outcome.score is None:
            if self.judge is None:
                self.counters["skipped_no_judge"] += 1
                return
            if self._rng.random() >= self.sample_rate:
                self.counters["skipped_unsampled"] += 1
                return
        self.worker.submit(
            Trajectory(
                run_id=outcome.run_id,
                task=outcome.task,
                path=path,
                mixture=dict(memo.mixture.weights) if memo is not None else None,
                status=outcome.status,
                answer=outcome.answer,
                cost_usd=outcome.cost_usd,
                latency_s=(now - memo.started) if memo is not None and memo.started else None,
                score=outcome.score,
                outputs=dict(outcome.outputs),
                metadata=dict(outcome.metadata),
                pheromone_version=memo.version if memo is not None else self.state.version,
            )
        )

    def _record(self, run_id: str, stage: str, exc: BaseException | str) -> None:
        text = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
        self.errors.append(LearningError(run_id, stage, text, time.time()))
        log.warning("ant-colony learning error", run_id=run_id, stage=stage, error=text)

    def _judge_error(self, traj: Trajectory, error: BaseException | str) -> None:
        self.counters["judge_errors"] += 1
        self._record(traj.run_id, "judge", error)

    async def _gate(self, traj: Trajectory) -> float | None:
        if traj.score is not None:
            return 1.0 if traj.score >= self.gate_threshold else 0.0
        if self.judge is None:
            return None
        verdict, error = await self._verdict(self.judge, traj)
        value = _number_in(verdict) if error is None else None
        if value is None:
            self._judge_error(
                traj,
                error
                or (
                    f"judge returned {verdict!r}, not a bool or a number in [0, 1]; "
                    "make it return True/False or a score"
                ),
            )
            return None
        return 1.0 if value >= self.gate_threshold else 0.0

    async def _verdict(
        self, judge: Judge, traj: Trajectory
    ) -> tuple[object, BaseException | str | None]:
        """`(verdict, None)`, or `(None, why)` when the judge is busy, timed out or raised."""
        call = self._call_judge(judge, traj)
        if call is None:
            return None, (
                f"judge busy: {self._judge_threads.running} calls still running past "
                f"judge_timeout_s ({self.judge_timeout_s}s); trajectory skipped — give the "
                "judge a timeout of its own so hung calls return"
            )
        try:
            return await asyncio.wait_for(call, self.judge_timeout_s), None
        except TimeoutError:
            return None, f"judge timed out after {self.judge_timeout_s}s"
        except Exception as exc:  # a broken judge is recorded, never raised
            return None, exc

    def _call_judge(self, judge: Judge, traj: Trajectory) -> Awaitable[Any] | None:
        """The judge's verdict as an awaitable; `None` when every judge thread is stuck."""
        is_async = inspect.iscoroutinefunction(judge) or inspect.iscoroutinefunction(
            type(judge).__call__
        )
        if is_async:
            return self._await_verdict(judge(traj))
        future = self._judge_threads.start(judge, traj)
        return None if future is None else self._await_verdict(future)

    @staticmethod
    async def _await_verdict(result: Any) -> Any:
        # A sync judge may return an awaitable too (a judge object built around a coroutine).
        while inspect.isawaitable(result):
            result = await result
        return result

    def path_cost(
        self, cost_usd: float, latency_s: float | None, path: Sequence[str] = ()
    ) -> float:
        """f_sys(P): `cost_weight·cost/cost_scale + latency_weight·latency/latency_scale`.

        With `cost_scale=None` the scale is the typical cost of the *most expensive* path seen
        so far (the largest per-path EWMA of cost, `path` naming the path), so the cost term
        lies in about [0, cost_weight] whichever paths the colony happens to favour. (A running
        mean of the chosen paths' cost, as before, fed back on itself: a colony that drifted to
        cheap paths saw the dear ones as ever dearer and stopped trying them, whatever their
        accuracy.) With `latency_scale=None` the latency scale is the running mean, so a typical
        path's latency counts about `latency_weight`: latency is the load signal, meant to
        follow the colony's own routing.
        """
        if self.cost_scale is None:
            with self._lock:
                key = tuple(path)
                old = self._path_cost.pop(key, None)
                a = 1.0 - 0.5 ** (1.0 / self.latency_halflife)
                self._path_cost[key] = cost_usd if old is None else (1 - a) * old + a * cost_usd
                while len(self._path_cost) > _MAX_PATHS:
                    self._path_cost.popitem(last=False)
                self._cost_ref = max(self._path_cost.values())
        c_ref = self.cost_scale or self._cost_ref or 0.0
        f = self.cost_weight * (cost_usd / c_ref) if c_ref > 0 else 0.0
        if latency_s is not None and self.latency_weight > 0:
            if self.latency_scale is None:
                self._latency_ref = (
                    latency_s
                    if self._latency_ref is None
                    else 0.99 * self._latency_ref + 0.01 * latency_s
                )
            l_ref = self.latency_scale or self._latency_ref or 0.0
            f += self.latency_weight * (latency_s / l_ref) if l_ref > 0 else 0.0
        return f

    def updates_for(
        self, trajectories: Sequence[tuple[Trajectory, float]]
    ) -> list[PheromoneUpdate]:
        """Pheromone updates for judged trajectories `(trajectory, gate)`."""
        out = []
        for traj, gate in trajectories:
            edges: list[Edge] = []
            prev = START
            for agent in traj.path:
                edges.append((prev, agent))
                prev = agent
            out.append(
                PheromoneUpdate(
                    run_id=traj.run_id,
                    path=tuple(edges),
                    mixture=dict(traj.mixture or {}),
                    gate=gate,
                    path_cost=self.path_cost(traj.cost_usd, traj.latency_s, traj.path),
                )
            )
        return out

    def commit(
        self, updates: Sequence[PheromoneUpdate], *, note: str | None = None
    ) -> PheromoneState:
        """Write updates to the store (re-applied on a lost race) and serve the result.

        Args:
            updates: What to apply, in order (see `apply_updates`).
            note: The version's note; default `learned N run(s), K accepted`.

        Raises:
            StoreError: The store failed (the worker records it).
        """
        return self._write(updates, note, None)

    def _write(
        self,
        updates: Sequence[PheromoneUpdate],
        note: str | None,
        meta: Callable[[dict[str, Any]], None] | None,
    ) -> PheromoneState:
        if self.book is None:
            self._require_graph()
        assert self.book is not None
        accepted = sum(1 for u in updates if u.gate >= 0.5)

        def change(state: PheromoneState) -> PheromoneState:
            new = apply_updates(
                state,
                updates,
                rho=self.rho,
                q=self.q,
                epsilon=self.epsilon,
                tau_min=self.tau_min,
                tau_max=self.tau_max,
                ability_rho=self.ability_rho,
                change_rho=self.change_rho,
                change_z=self.change_z,
            )
            if meta is not None:
                meta(new.meta)
            return new

        new = self.book.commit(
            change,
            self._prepare,
            note=note or f"learned {len(updates)} run(s), {accepted} accepted",
        )
        self._serve(new)
        return new

    async def warm_up(
        self,
        runs: Iterable[WarmUpRun],
        *,
        complete: Complete | None = None,
        source: str = "",
    ) -> PheromoneState:
        """Initialise the tables offline from labelled runs (AMRO-S's warm-up), as one version.

        AMRO-S initialises each task's pheromone table from labelled data before it serves,
        so the colony does not pay for its first lessons with live requests. Each run is
        learned exactly as a judged run is online: its score is gated at `gate_threshold`,
        the edges of its path evaporate and receive a deposit inversely proportional to its
        path cost, and each agent on the path gains ability evidence. Warm-up evidence
        therefore fades as live evidence replaces it (`rho`, `ability_rho`), and an agent
        that was good offline and degrades online is noticed as any other.

        The mixture of each distinct request text is inferred once by the colony's intent
        model (an `OnlineClusterIntent` seeds its clusters with them); an intent failure
        gives that text a uniform mixture and is recorded in `errors`, as online. Every run
        is checked before anything is written: one bad run writes nothing.

        Args:
            runs: Labelled runs. An offline evaluation that ran every agent of a one-stage
                pool on a request gives one run per agent.
            complete: Model access for an `LLMIntent`.
            source: Where the runs come from; kept in the version's note and in
                `meta["warm_ups"]`.

        Returns:
            The new serving state; its `version` is the warm-up's version in the store.

        Raises:
            ConfigurationError: No runs; a path that is not a path of the graph; a score
                outside [0, 1]; a cost or latency that is negative or not finite; a given
                mixture that is not a mapping, names an unknown task, or has no usable
                weight (a mixture that does not sum to one is rescaled).
            StoreError: Writing the tables failed.
        """
        graph = self._require_graph()
        names = [t.name for t in self.tasks]
        edges = set(graph.edges)
        checked = [_checked_run(i, run, graph, edges, names) for i, run in enumerate(runs)]
        if not checked:
            msg = "AntColony.warm_up: no runs given; pass at least one WarmUpRun"
            raise ConfigurationError(msg)
        mixtures: dict[str, Mixture] = {}
        failed = 0
        for run, given in checked:
            if given is None and run.task not in mixtures:
                mix = await self.infer(run.task, complete)
                failed += any(r.startswith(_INTENT_FAILED) for r in mix.repairs)
                mixtures[run.task] = mix
        pairs: list[tuple[Trajectory, float]] = []
        for i, (run, given) in enumerate(checked):
            mix = mixtures[run.task] if given is None else given
            traj = Trajectory(
                run_id=f"warm-up:{i}",
                task=run.task,
                path=run.path,
                mixture=dict(mix.weights),
                status="completed",
                answer=None,
                cost_usd=run.cost_usd,
                latency_s=run.latency_s,
                score=run.score,
            )
            gate = await self._gate(traj)  # a scored trajectory: gated as feedback is
            assert gate is not None
            pairs.append((traj, gate))
        updates = self.updates_for(pairs)
        accepted = sum(1 for _, gate in pairs if gate >= 0.5)
        entry = {
            "runs": len(pairs),
            "accepted": accepted,
            "texts": len({r.task for r, _ in checked}),
            "intent_failures": failed,
            "source": source,
        }

        def note_meta(meta: dict[str, Any]) -> None:
            meta["warm_ups"] = [*meta.get("warm_ups", [])[-9:], entry]

        label = f" from {source}" if source else ""
        # The store write (and its back-off after a lost race) is blocking: off the loop.
        new = await asyncio.to_thread(
            self._write,
            updates,
            f"warm-up{label}: {len(pairs)} labelled run(s), {accepted} accepted",
            note_meta,
        )
        self.counters["warmed_up"] += len(pairs)
        log.info("ant-colony warmed up", key=self.key_param, version=new.version, **entry)
        return new

    def _serve(self, state: PheromoneState) -> bool:
        # Commits (worker) and refreshes (worker or a background thread) may finish in either
        # order; an older snapshot must never replace a newer one.
        with self._lock:
            if self._state is not None and state.version <= self._state.version:
                return False
            self._state = state
            return True

    async def learn_batch(self, batch: list[Trajectory]) -> None:
        """Judge a batch and commit its updates (the worker's handler; never raises).

        Each trajectory is judged on its own: one that fails (a broken judge, an intent model
        that raises, an unusable field) is recorded in `errors` and skipped, and the rest of
        the batch is still learned.
        """
        updates: list[PheromoneUpdate] = []
        for item in batch:
            try:
                traj = item
                if traj.mixture is None:
                    mix = await self.infer(traj.task)
                    traj = dataclasses.replace(traj, mixture=dict(mix.weights))
                gate = await self._gate(traj)
                if gate is None:
                    continue
                update = self.updates_for([(traj, gate)])
            except Exception as exc:  # one bad trajectory must not lose the others
                self.counters["learn_errors"] += 1
                self._record(item.run_id, "learn", exc)
                continue
            self.counters["judged"] += 1
            self.counters["accepted" if gate >= 0.5 else "rejected"] += 1
            updates.extend(update)
        if not updates:
            return
        try:
            await asyncio.to_thread(self.commit, updates)
        except Exception as exc:  # the store being down must not break anything else
            self.counters["commit_errors"] += 1
            self._record(",".join(u.run_id for u in updates[:3]), "commit", exc)

    async def _refresh_async(self) -> None:
        try:
            await asyncio.to_thread(self.refresh)
        except Exception as exc:  # recorded; serving keeps its snapshot
            self._record("", "refresh", exc)

    def refresh(self) -> bool:
        """Re-read the tables when another process wrote a newer version. Returns whether it did.

        Runs every `refresh_s` seconds on the learning worker and, for a process that only
        serves (its worker may never have started), in the background when `route` finds the
        last refresh older than `refresh_s`.

        Raises:
            StoreError: The store failed (background refreshes record it in `errors`).
        """
        if self.book is None:
            return False
        self._next_refresh = time.monotonic() + self.refresh_s
        rec = self.book.store.get_state(self.book.key)
        if rec is None or rec.version <= self.state.version:
            return False
        loaded = self.book.load(rec.version)
        return self._serve(self._prepare(loaded))

    def _kick_refresh(self, now: float) -> None:
        """Start a background `refresh` when `refresh_s` has passed; never waits for the store."""
        if now < self._next_refresh or not self._shared_store or self.book is None:
            return
        with self._refresh_lock:
            if self._refreshing or now < self._next_refresh:
                return
            self._refreshing = True
            self._next_refresh = now + self.refresh_s
        threading.Thread(
            target=self._refresh_in_background, name="agentroute-ant-colony-refresh", daemon=True
        ).start()

    def _refresh_in_background(self) -> None:
        try:
            self.refresh()
        except Exception as exc:  # recorded; serving keeps its snapshot
            self._record("", "refresh", exc)
        finally:
            with self._refresh_lock:
                self._refreshing = False

    def drain(self, timeout: float | None = 30.0) -> bool:
        """Wait until queued learning is applied (tests, benchmarks, shutdown)."""
        return self.worker.drain(timeout)

    def close(self) -> None:
        """Finish queued learning and stop the background worker."""
        self.worker.close()

    def stats(self) -> dict[str, Any]:
        """Counters of decisions and learning, the buffer, and the table version."""
        return {
            **self.counters,
            **{f"buffer_{k}": v for k, v in self.worker.stats().items()},
            "pheromone_version": self._state.version if self._state is not None else 0,
            "errors": len(self.errors),
        }
