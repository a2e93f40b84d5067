"""Pheromone tables τ^t (one per task type) and their versioned home in the trace store.

A `PheromoneState` holds, per task type, one pheromone value per edge of the layered graph,
plus learned per-(task, agent) ability counts, and the same two for *all tasks together* (the
global table every run learns into). A task row that has seen little evidence backs off to
the global row (`PheromoneState.backed_off`), so a new or rare task type starts from what the
colony learned on every task instead of from the uniform τ0. It is stored whole, as JSON,
under one key of the trace store's learned state (`TraceStore.get_state/put_state/
list_state`); each write appends the next version, so every version is a snapshot that can be
listed, diffed and restored (a rollback writes an old value as the newest version).

Writers never lose each other's updates: a writer reads version v, applies its *updates* (not
a precomputed table) and writes v+1 with `expected_version=v`; when another writer got there
first the store raises `StateConflict`, and the writer re-reads and re-applies the same
updates to the newer table (`PheromoneBook.commit`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agentroute.errors import StateConflict, StoreError
from agentroute.routing._state_book import StateBook
from agentroute.routing.colony._graph import Edge, edge_key
from agentroute.stores import TraceStore

__all__ = [
    "INDEX_KEY",
    "STATE_FORMAT",
    "PheromoneBook",
    "PheromoneDiff",
    "PheromoneState",
    "PheromoneUpdate",
    "apply_updates",
]


STATE_FORMAT = "agentroute.ant-colony/2"
"""Format tag of the stored value (version 2 added the global table; version 1 still loads)."""

_FORMATS = ("agentroute.ant-colony/1", STATE_FORMAT)


INDEX_KEY = "ant-colony/_index"
"""Learned-state key listing every colony key written to a store (for the CLI)."""


def _parse_edge(key: str) -> Edge:
    src, _, dst = key.partition("->")
    return (src, dst)


@dataclass
class PheromoneState:
    """Pheromone tables and learned abilities at one version.

    Attributes:
        tasks: Task type names (rows of `tau`).
        edges: Graph edges (columns of `tau`).
        agents: Agent names (columns of the ability arrays).
        tau: `(len(tasks), len(edges))` pheromone values τ^t_e.
        ability_n: `(len(tasks), len(agents))` mixture-weighted count of judged runs.
        ability_sum: Same shape: mixture-weighted sum of the judge's verdicts.
        version: Store version this state was read at (0 = never stored).
        meta: Counters and provenance (runs learned, accepted, reconciliations, ...).
        tau_all: `(len(edges),)` the global table: τ learned from every run with weight 1.
        prior_left: `(len(tasks), len(edges))` share of the initial value τ0 still inside
            τ^t_e: 1 for an edge the task never used, times (1 − ρ·w_t) at each update.
        ability_n_all: `(len(agents),)` count of judged runs over all tasks.
        ability_sum_all: Same shape: sum of their verdicts.
        ability_n_recent: `(len(tasks), len(agents))` the recent window of `ability_n`, which
            evaporates faster (`change_rho`); the change test of `apply_updates` compares it
            with the older evidence.
        ability_sum_recent: Same shape: sum of those runs' verdicts.
    """

    tasks: tuple[str, ...]
    edges: tuple[Edge, ...]
    agents: tuple[str, ...]
    tau: np.ndarray
    ability_n: np.ndarray
    ability_sum: np.ndarray
    version: int = 0
    meta: dict[str, Any] = field(default_factory=dict)
    tau_all: np.ndarray = field(default_factory=lambda: np.zeros(0))
    prior_left: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    ability_n_all: np.ndarray = field(default_factory=lambda: np.zeros(0))
    ability_sum_all: np.ndarray = field(default_factory=lambda: np.zeros(0))
    ability_n_recent: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    ability_sum_recent: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    _indexes: tuple[Any, ...] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # States written before the global table existed (format 1, or built by hand) get one
        # derived from the task rows, and no back-off: their task rows are trusted as learned.
        if self.tau_all.shape != (len(self.edges),):
            self.tau_all = self.tau.mean(axis=0) if len(self.tasks) else np.zeros(len(self.edges))
        if self.prior_left.shape != self.tau.shape:
            self.prior_left = np.zeros(self.tau.shape)
        if self.ability_n_all.shape != (len(self.agents),):
            self.ability_n_all = self.ability_n.sum(axis=0)
        if self.ability_sum_all.shape != (len(self.agents),):
            self.ability_sum_all = self.ability_sum.sum(axis=0)
        # States written before the recent window existed start it empty (no change can be
        # called until it has evidence of its own).
        if self.ability_n_recent.shape != self.ability_n.shape:
            self.ability_n_recent = np.zeros(self.ability_n.shape)
        if self.ability_sum_recent.shape != self.ability_sum.shape:
            self.ability_sum_recent = np.zeros(self.ability_sum.shape)

    @classmethod
    def fresh(
        cls,
        tasks: Sequence[str],
        edges: Sequence[Edge],
        agents: Sequence[str],
        tau0: float,
    ) -> PheromoneState:
        """A new state with every edge at `tau0` and no ability evidence."""
        return cls(
            tasks=tuple(tasks),
            edges=tuple(edges),
            agents=tuple(agents),
            tau=np.full((len(tasks), len(edges)), tau0, dtype=np.float64),
            ability_n=np.zeros((len(tasks), len(agents))),
            ability_sum=np.zeros((len(tasks), len(agents))),
            meta={"learned": 0, "accepted": 0, "rejected": 0},
            tau_all=np.full(len(edges), tau0, dtype=np.float64),
            prior_left=np.ones((len(tasks), len(edges))),
            ability_n_all=np.zeros(len(agents)),
            ability_sum_all=np.zeros(len(agents)),
            ability_n_recent=np.zeros((len(tasks), len(agents))),
            ability_sum_recent=np.zeros((len(tasks), len(agents))),
        )

    def copy(self) -> PheromoneState:
        """A deep copy (the serving snapshot is never mutated in place)."""
        return PheromoneState(
            self.tasks,
            self.edges,
            self.agents,
            self.tau.copy(),
            self.ability_n.copy(),
            self.ability_sum.copy(),
            self.version,
            dict(self.meta),
            self.tau_all.copy(),
            self.prior_left.copy(),
            self.ability_n_all.copy(),
            self.ability_sum_all.copy(),
            self.ability_n_recent.copy(),
            self.ability_sum_recent.copy(),
        )

    def backed_off(self, tau0: float, cols: Sequence[int] | None = None) -> np.ndarray:
        """Task tables with their unlearned share taken from the global table.

        `τ^t_e + prior_left^t_e·(τ^all_e − τ0)`: the part of τ^t_e that is still the initial
        value τ0 is replaced by what every task together learned on the edge, so a task with
        little evidence starts from the global table, and a task with plenty is its own.

        Args:
            tau0: The initial pheromone value τ0.
            cols: Only these edge columns (a decision needs its candidates' edges, not the
                whole table); default all.
        """
        if cols is None:
            out: np.ndarray = self.tau + self.prior_left * (self.tau_all - tau0)[None, :]
            return out
        idx = np.asarray(cols, dtype=np.intp)
        part: np.ndarray = (
            self.tau[:, idx] + self.prior_left[:, idx] * (self.tau_all[idx] - tau0)[None, :]
        )
        return part

    def indexes(self) -> tuple[dict[Edge, int], dict[str, int]]:
        """Column of each edge and of each agent, built once per state (decisions reuse them)."""
        cached = self._indexes
        if cached is None or cached[0] is not self.edges or cached[1] is not self.agents:
            e_index = {e: j for j, e in enumerate(self.edges)}
            a_index = {a: j for j, a in enumerate(self.agents)}
            cached = (self.edges, self.agents, e_index, a_index)
            self._indexes = cached
        return cached[2], cached[3]

    def to_value(self) -> dict[str, Any]:
        """JSON-ready value for `TraceStore.put_state`."""
        return {
            "format": STATE_FORMAT,
            "tasks": list(self.tasks),
            "edges": [edge_key(e) for e in self.edges],
            "agents": list(self.agents),
            "tau": [[round(float(x), 9) for x in row] for row in self.tau],
            "ability_n": self.ability_n.round(9).tolist(),
            "ability_sum": self.ability_sum.round(9).tolist(),
            "tau_all": [round(float(x), 9) for x in self.tau_all],
            "prior_left": self.prior_left.round(9).tolist(),
            "ability_n_all": self.ability_n_all.round(9).tolist(),
            "ability_sum_all": self.ability_sum_all.round(9).tolist(),
            "ability_n_recent": self.ability_n_recent.round(9).tolist(),
            "ability_sum_recent": self.ability_sum_recent.round(9).tolist(),
            "meta": self.meta,
        }

    @classmethod
    def from_value(cls, value: Mapping[str, Any], version: int) -> PheromoneState:
        """Read a stored value back (no reconciliation; see `reconcile`).

        Raises:
            ValueError: The value is not an ant-colony state.
        """
        if value.get("format") not in _FORMATS:
            msg = f"not an ant-colony pheromone state (format {value.get('format')!r})"
            raise ValueError(msg)
        tasks = tuple(value["tasks"])
        edges = tuple(_parse_edge(k) for k in value["edges"])
        agents = tuple(value["agents"])
        tau = np.asarray(value["tau"], dtype=np.float64).reshape(len(tasks), len(edges))
        n = np.asarray(value["ability_n"], dtype=np.float64).reshape(len(tasks), len(agents))
        s = np.asarray(value["ability_sum"], dtype=np.float64).reshape(len(tasks), len(agents))
        extra = {
            name: np.asarray(value[name], dtype=np.float64)
            for name in (
                "tau_all",
                "prior_left",
                "ability_n_all",
                "ability_sum_all",
                "ability_n_recent",
                "ability_sum_recent",
            )
            if name in value
        }
        shapes = {
            "prior_left": (len(tasks), len(edges)),
            "ability_n_recent": (len(tasks), len(agents)),
            "ability_sum_recent": (len(tasks), len(agents)),
        }
        for name, shape in shapes.items():
            if name in extra:
                extra[name] = extra[name].reshape(shape)
        return cls(tasks, edges, agents, tau, n, s, version, dict(value.get("meta", {})), **extra)

    def reconcile(
        self,
        tasks: Sequence[str],
        edges: Sequence[Edge],
        agents: Sequence[str],
        tau0: float,
    ) -> tuple[PheromoneState, list[str]]:
        """Fit a state written for another registry version to the current tasks and graph.

        Values of tasks, edges and agents that still exist are kept; new ones start fresh
        (`tau0`, no ability evidence); removed ones are dropped. Returns the fitted state and
        a description of every change (empty when nothing changed).
        """
        changes: list[str] = []
        for kind, old, new in (
            ("task", self.tasks, tuple(tasks)),
            ("edge", tuple(edge_key(e) for e in self.edges), tuple(edge_key(e) for e in edges)),
            ("agent", self.agents, tuple(agents)),
        ):
            added = sorted(set(new) - set(old))
            removed = sorted(set(old) - set(new))
            if added:
                changes.append(f"added {kind}(s) {added}")
            if removed:
                changes.append(f"removed {kind}(s) {removed}")
        same_order = (self.tasks, self.edges, self.agents) == (
            tuple(tasks),
            tuple(edges),
            tuple(agents),
        )
        if not changes and same_order:
            return self, []
        fitted = PheromoneState.fresh(tasks, edges, agents, tau0)
        fitted.version = self.version
        fitted.meta = dict(self.meta)
        t_old = {t: i for i, t in enumerate(self.tasks)}
        e_old = {e: i for i, e in enumerate(self.edges)}
        a_old = {a: i for i, a in enumerate(self.agents)}
        rows = [(i, t_old[t]) for i, t in enumerate(tasks) if t in t_old]
        cols = [(j, e_old[e]) for j, e in enumerate(edges) if e in e_old]
        acols = [(j, a_old[a]) for j, a in enumerate(agents) if a in a_old]
        if cols:
            ci, co = zip(*cols, strict=True)
            fitted.tau_all[list(ci)] = self.tau_all[list(co)]
        if acols:
            ai, ao = zip(*acols, strict=True)
            fitted.ability_n_all[list(ai)] = self.ability_n_all[list(ao)]
            fitted.ability_sum_all[list(ai)] = self.ability_sum_all[list(ao)]
        if rows and cols:
            ri, ro = zip(*rows, strict=True)
            ci, co = zip(*cols, strict=True)
            fitted.tau[np.ix_(ri, ci)] = self.tau[np.ix_(ro, co)]
            fitted.prior_left[np.ix_(ri, ci)] = self.prior_left[np.ix_(ro, co)]
        if rows and acols:
            ri, ro = zip(*rows, strict=True)
            ai, ao = zip(*acols, strict=True)
            fitted.ability_n[np.ix_(ri, ai)] = self.ability_n[np.ix_(ro, ao)]
            fitted.ability_sum[np.ix_(ri, ai)] = self.ability_sum[np.ix_(ro, ao)]
            fitted.ability_n_recent[np.ix_(ri, ai)] = self.ability_n_recent[np.ix_(ro, ao)]
            fitted.ability_sum_recent[np.ix_(ri, ai)] = self.ability_sum_recent[np.ix_(ro, ao)]
        return fitted, changes

    def effective(self) -> np.ndarray:
        """The task tables decisions use: backed off (`backed_off`) and clipped to τ's bounds.

        Needs the colony's τ0 and bounds, which it records in `meta["tau"]`; a state without
        them (written before they were recorded) gives its stored tables.
        """
        bounds = self.meta.get("tau")
        if not isinstance(bounds, Mapping):
            return self.tau
        out: np.ndarray = np.clip(
            self.backed_off(float(bounds["tau0"])), float(bounds["min"]), float(bounds["max"])
        )
        return out

    def table(self, task: str, *, effective: bool = False) -> dict[str, float]:
        """Edge → τ for one task: as stored, or as decisions use it (`effective`)."""
        i = self.tasks.index(task)
        rows = self.effective() if effective else self.tau
        return {edge_key(e): float(v) for e, v in zip(self.edges, rows[i], strict=True)}


@dataclass(frozen=True)
class PheromoneUpdate:
    """One accepted-or-rejected trajectory, as the learner applies it to a state.

    Stored updates are replayable: re-applying the same updates to a newer version is how a
    writer that lost a race recovers without losing anyone's learning.
    """

    run_id: str
    path: tuple[Edge, ...]
    """The edges the run took, `START` first."""
    mixture: dict[str, float]
    """w(q) of the run's query."""
    gate: float
    """The judge's verdict: 1 accepted, 0 rejected (or a graded value in [0, 1])."""
    path_cost: float
    """f_sys(P): normalised system cost of the path (token cost and latency)."""

    def evidence(self) -> dict[str, Any]:
        """JSON-ready record of the update (kept in the state's `meta.last_updates`)."""
        return {
            "run_id": self.run_id,
            "path": [edge_key(e) for e in self.path],
            "gate": round(self.gate, 4),
            "path_cost": round(self.path_cost, 6),
            "mixture": {k: round(v, 4) for k, v in self.mixture.items() if v >= 1e-4},
        }


def apply_updates(
    state: PheromoneState,
    updates: Sequence[PheromoneUpdate],
    *,
    rho: float,
    q: float,
    epsilon: float,
    tau_min: float,
    tau_max: float,
    ability_rho: float = 0.0,
    change_rho: float = 0.05,
    change_z: float | None = None,
) -> PheromoneState:
    """Apply updates in order and return the new state (the input is not modified).

    For each update, task t and edge e on its path:
    `τ^t_e ← (1 − ρ·w_t)·τ^t_e + w_t·g·Q / (f_sys(P) + ε)`, clipped to `[tau_min, tau_max]`;
    and the ability evidence of each agent on the path first evaporates by `ability_rho·w_t`,
    then grows by `w_t` (count) and `w_t·g` (sum). The global table learns the same way with
    weight 1 (every run belongs to "all tasks"), and `prior_left^t_e` shrinks by `1 − ρ·w_t`.
    Evaporation touches only the edges of the judged path, in proportion to how much of the
    query belongs to each task: an edge nobody takes keeps its value (no rich-get-richer
    decay of unexplored edges), and a rejected path loses pheromone (deposit 0) — so each τ^t_e
    is a recency-weighted estimate of accepted utility per unit cost.

    With `change_z`, each (task, agent) also keeps a faster-evaporating recent window
    (`change_rho`); when the window's accepted rate differs from the older evidence (the
    ability evidence minus the window) by more than `change_z` standard errors, both holding
    at least `CHANGE_MIN_RUNS` mixture-weighted runs, that task's ability evidence of the agent
    is replaced by the window (counted in `meta["ability_changes"]`). The all-task evidence,
    the back-off prior of tasks without their own, keeps fading at `ability_rho`.
    """
    new = state.copy()
    t_index = {t: i for i, t in enumerate(new.tasks)}
    e_index = {e: j for j, e in enumerate(new.edges)}
    a_index = {a: j for j, a in enumerate(new.agents)}
    accepted = rejected = changes = 0
    for up in updates:
        cols = [e_index[e] for e in up.path if e in e_index]
        agents = [a_index[dst] for _, dst in up.path if dst in a_index]
        deposit = up.gate * q / (up.path_cost + epsilon)
        new.tau_all[cols] = (1.0 - rho) * new.tau_all[cols] + deposit
        keep_all = 1.0 - ability_rho
        new.ability_n_all[agents] = keep_all * new.ability_n_all[agents] + 1.0
        new.ability_sum_all[agents] = keep_all * new.ability_sum_all[agents] + up.gate
        for task, w in up.mixture.items():
            i = t_index.get(task)
            if i is None or w <= 0:
                continue
            row = new.tau[i]
            row[cols] = (1.0 - rho * w) * row[cols] + w * deposit
            new.prior_left[i, cols] *= 1.0 - rho * w
            keep = 1.0 - ability_rho * w
            new.ability_n[i, agents] = keep * new.ability_n[i, agents] + w
            new.ability_sum[i, agents] = keep * new.ability_sum[i, agents] + w * up.gate
            keep = 1.0 - change_rho * w
            new.ability_n_recent[i, agents] = keep * new.ability_n_recent[i, agents] + w
            new.ability_sum_recent[i, agents] = (
                keep * new.ability_sum_recent[i, agents] + w * up.gate
            )
            if change_z is not None:
                changed = [
                    j
                    for j in agents
                    if _changed(
                        new.ability_n_recent[i, j],
                        new.ability_sum_recent[i, j],
                        new.ability_n[i, j],
                        new.ability_sum[i, j],
                        change_z,
                    )
                ]
                if changed:
                    new.ability_n[i, changed] = new.ability_n_recent[i, changed]
                    new.ability_sum[i, changed] = new.ability_sum_recent[i, changed]
                    changes += len(changed)
        accepted += up.gate >= 0.5
        rejected += up.gate < 0.5
    np.clip(new.tau, tau_min, tau_max, out=new.tau)
    np.clip(new.tau_all, tau_min, tau_max, out=new.tau_all)
    meta = new.meta
    meta["learned"] = int(meta.get("learned", 0)) + len(updates)
    meta["accepted"] = int(meta.get("accepted", 0)) + int(accepted)
    meta["rejected"] = int(meta.get("rejected", 0)) + int(rejected)
    meta["last_updates"] = [u.evidence() for u in updates[-16:]]
    if changes:
        meta["ability_changes"] = int(meta.get("ability_changes", 0)) + changes
    return new


CHANGE_MIN_RUNS = 8.0
"""Mixture-weighted runs both sides of the change test need before a change can be called."""


def _changed(n_recent: float, s_recent: float, n_all: float, s_all: float, z: float) -> bool:
    """Whether an agent's recent accepted rate differs from its older one (two-proportion z).

    Recent = the fast window; older = the ability evidence minus the window.
    """
    n_old = n_all - n_recent
    if n_recent < CHANGE_MIN_RUNS or n_old < CHANGE_MIN_RUNS:
        return False
    s_old = min(max(s_all - s_recent, 0.0), n_old)
    p_recent = min(s_recent / n_recent, 1.0)
    p_old = s_old / n_old
    pooled = (s_recent + s_old) / (n_recent + n_old)
    var = pooled * (1.0 - pooled) * (1.0 / n_recent + 1.0 / n_old)
    return bool(var > 0 and abs(p_recent - p_old) > z * math.sqrt(var))


@dataclass(frozen=True)
class PheromoneDiff:
    """How τ changed between two versions, per task and edge (only edges that changed)."""

    old_version: int
    new_version: int
    changes: dict[str, dict[str, tuple[float, float]]]
    """Task → edge → (old τ, new τ)."""

    def largest(self, n: int = 10) -> list[tuple[str, str, float, float]]:
        """The `n` changes of largest magnitude as (task, edge, old, new)."""
        flat = [(t, e, a, b) for t, es in self.changes.items() for e, (a, b) in es.items()]
        return sorted(flat, key=lambda x: -abs(x[3] - x[2]))[:n]


class PheromoneBook(StateBook):
    """The pheromone state of one colony in a trace store: load, commit, list, diff, roll back.

    Args:
        store: Any `TraceStore` (in memory, SQLite, PostgreSQL).
        key: State key, e.g. `ant-colony/support-desk`.
        max_retries: Re-reads after a lost race before giving up on one commit.
    """

    @staticmethod
    def known_keys(store: TraceStore) -> list[str]:
        """Colony keys recorded in `store`'s index (see `register`)."""
        rec = store.get_state(INDEX_KEY)
        return list(rec.value.get("keys", [])) if rec is not None else []

    def register(self) -> None:
        """Add this key to the store's index of colony keys (idempotent, race-safe)."""
        for _ in range(self.max_retries + 1):
            rec = self.store.get_state(INDEX_KEY)
            keys = list(rec.value.get("keys", [])) if rec is not None else []
            if self.key in keys:
                return
            try:
                self.store.put_state(
                    INDEX_KEY,
                    {"keys": sorted([*keys, self.key])},
                    expected_version=rec.version if rec is not None else None,
                    note=f"add {self.key}",
                )
            except StateConflict:
                continue
            return

    def load(self, version: int | None = None) -> PheromoneState | None:
        """The latest (or a given) stored version, or `None` when nothing is stored.

        Raises:
            StoreError: The store failed.
            ValueError: The stored value is not an ant-colony state.
        """
        rec = self.store.get_state(self.key, version)
        return None if rec is None else PheromoneState.from_value(rec.value, rec.version)

    def commit(
        self,
        change: Callable[[PheromoneState], PheromoneState],
        prepare: Callable[[PheromoneState | None], PheromoneState],
        note: str,
    ) -> PheromoneState:
        """Apply `change` to the latest version and store the result as the next version.

        `change` must be a pure function of the state it is given: after a lost race it is
        applied again to the newer version, so no writer's update is lost. `prepare` turns
        what was read (`None` when nothing is stored) into a state fitted to the current graph
        (a fresh one, or a reconciled one after agents were added or removed).

        Raises:
            StateConflict: More than `max_retries` races lost in a row.
            StoreError: The store failed.
        """

        def attempt() -> PheromoneState:
            current = prepare(self.load())
            new = change(current)
            rec = self.store.put_state(
                self.key, new.to_value(), expected_version=current.version, note=note
            )
            new.version = rec.version
            return new

        return self.retrying(attempt, "writing")

    def versions(self) -> list[dict[str, Any]]:
        """Every version as `{version, created_at, note, learned, accepted}`, oldest first."""
        out = []
        for rec in self.store.list_state(self.key):
            meta = rec.value.get("meta", {})
            out.append(
                {
                    "version": rec.version,
                    "created_at": rec.created_at,
                    "note": rec.note,
                    "learned": meta.get("learned", 0),
                    "accepted": meta.get("accepted", 0),
                }
            )
        return out

    def diff(self, old: int, new: int | None = None, *, tolerance: float = 1e-12) -> PheromoneDiff:
        """τ changes from version `old` to `new` (default the latest).

        Raises:
            StoreError: A version does not exist.
        """
        a = self.load(old)
        b = self.load(new)
        if a is None or b is None:
            msg = f"state {self.key!r} has no version {old if a is None else new}"
            raise StoreError(msg)
        changes: dict[str, dict[str, tuple[float, float]]] = {}
        for task in sorted(set(a.tasks) | set(b.tasks)):
            ta = a.table(task) if task in a.tasks else {}
            tb = b.table(task) if task in b.tasks else {}
            per: dict[str, tuple[float, float]] = {}
            for e in sorted(set(ta) | set(tb)):
                x, y = ta.get(e, float("nan")), tb.get(e, float("nan"))
                if not (abs(x - y) <= tolerance):
                    per[e] = (x, y)
            if per:
                changes[task] = per
        return PheromoneDiff(a.version, b.version, changes)

    def rollback(self, version: int) -> PheromoneState:
        """Write version `version`'s value as the newest version (history is kept).

        Raises:
            StoreError: No such version.
        """
        old = self.store.get_state(self.key, version)
        if old is None:
            msg = f"state {self.key!r} has no version {version}; list them with `versions()`"
            raise StoreError(msg)

        def attempt() -> PheromoneState:
            latest = self.store.get_state(self.key)
            rec = self.store.put_state(
                self.key,
                old.value,
                expected_version=latest.version if latest else None,
                note=f"rollback to {version}",
            )
            return PheromoneState.from_value(rec.value, rec.version)

        return self.retrying(attempt, "rolling back")
