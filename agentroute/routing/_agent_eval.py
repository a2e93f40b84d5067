"""Offline evaluation of agent-slot strategies: data files, registries, metrics.

Used by `agentroute eval agents` and `benchmarks/agents_quality.py`. Formats (JSON lines):

- AGENTS: `{"name": ..., "description": ..., "examples": [...]}` (`examples` optional);
- QUERIES: `{"text": ..., "gold": [agent names]}` (an empty list = out of scope; a single
  string is accepted for `gold`).
"""

from __future__ import annotations

import math
import re
import statistics
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentroute._jsonl import json_lines
from agentroute.errors import ConfigurationError, did_you_mean
from agentroute.registry import Registry
from agentroute.registry._specs import NAME_PATTERN
from agentroute.routing._protocol import Complete, RouteDecision, RoutingContext, RoutingStrategy

__all__ = [
    "AgentRecord",
    "QueryRecord",
    "RoutingMetrics",
    "build_registry",
    "evaluate_strategy",
    "read_agents",
    "read_queries",
    "routing_metrics",
]

_NAME = re.compile(NAME_PATTERN)


@dataclass(frozen=True, slots=True)
class AgentRecord:
    """One agent of an AGENTS file."""

    name: str
    description: str
    examples: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class QueryRecord:
    """One labelled request of a QUERIES file."""

    text: str
    gold: tuple[str, ...]
    """The right agents; empty = out of scope."""


def read_agents(path: str | Path) -> list[AgentRecord]:
    """Read an AGENTS file. Duplicate names are merged (examples concatenated).

    Raises:
        ConfigurationError: A line without a name, or no agent at all (names the line).
    """
    merged: dict[str, AgentRecord] = {}
    for lineno, obj in json_lines(path):
        name = str(obj.get("name") or obj.get("id") or "").strip()
        if not name:
            msg = f"{path}:{lineno}: an agent needs a non-empty 'name'"
            raise ConfigurationError(msg)
        desc = str(obj.get("description") or "").strip()
        raw_examples = obj.get("examples") or ()
        if isinstance(raw_examples, str):
            raw_examples = [raw_examples]
        examples = tuple(str(e).strip() for e in raw_examples if str(e).strip())
        if name in merged:
            old = merged[name]
            merged[name] = AgentRecord(name, old.description or desc, old.examples + examples)
        else:
            merged[name] = AgentRecord(name, desc, examples)
    if not merged:
        msg = f"{path}: no agents"
        raise ConfigurationError(msg)
    return list(merged.values())


def read_queries(path: str | Path, agents: Collection[str] | None = None) -> list[QueryRecord]:
    """Read a QUERIES file.

    Args:
        path: The file.
        agents: The agent names the gold labels must come from; `None` = not checked.

    Raises:
        ConfigurationError: A line without `text`, or a gold agent not in `agents` (names the
            line), or no query at all.
    """
    out: list[QueryRecord] = []
    for lineno, obj in json_lines(path):
        text = obj.get("text", obj.get("query"))
        if not isinstance(text, str) or not text.strip():
            msg = f"{path}:{lineno}: a query needs a non-empty 'text'"
            raise ConfigurationError(msg)
        gold = obj.get("gold", [])
        if gold is None:
            gold = []
        if isinstance(gold, str):
            gold = [gold] if gold else []
        golds = tuple(str(g) for g in gold)
        if agents is not None:
            unknown = [g for g in golds if g not in agents]
            if unknown:
                hint = did_you_mean(unknown[0], agents)
                msg = (
                    f"{path}:{lineno}: gold agent {unknown[0]!r} is not in the agents file "
                    f"(an empty gold list means out of scope){hint}"
                )
                raise ConfigurationError(msg)
        out.append(QueryRecord(text.strip(), golds))
    if not out:
        msg = f"{path}: no queries"
        raise ConfigurationError(msg)
    return out


def _safe_name(name: str, taken: set[str]) -> str:
    base = name if _NAME.match(name) else re.sub(r"[^A-Za-z0-9_.\-]+", "_", name).strip("_.-")
    base = (base or "agent")[:120]
    if not base[0].isalnum():
        base = "a" + base
    out, i = base, 1
    while out in taken:
        i += 1
        out = f"{base}-{i}"
    taken.add(out)
    return out


def build_registry(agents: Sequence[AgentRecord]) -> tuple[Registry, dict[str, str]]:
    """A registry with one placeholder agent per record, for routing offline.

    Names that are not valid registry names are made safe; agents without a description get
    one from their name (the registry refuses empty descriptions).

    Returns:
        The registry and the map from original names to registry names.
    """
    registry = Registry()
    taken: set[str] = set()
    names: dict[str, str] = {}
    for rec in agents:
        safe = _safe_name(rec.name, taken)
        names[rec.name] = safe
        desc = rec.description or rec.name.replace("_", " ").replace("-", " ")

        def placeholder(ctx: Any, task: str) -> str:
            return task

        registry.agent(name=safe, description=desc, examples=rec.examples)(placeholder)
    return registry, names


@dataclass(frozen=True, slots=True)
class RoutingMetrics:
    """Quality and speed of a strategy on labelled requests.

    `accuracy`: share of requests handled right (an in-scope request whose chosen agents
    include a gold agent; an out-of-scope request the strategy declined). `precision`,
    `recall`, `f1`: set metrics per request, averaged over all requests (a declined
    out-of-scope request scores 1). `oos_precision` / `oos_recall`: of declined requests,
    the share truly out of scope / of out-of-scope requests, the share declined (0.0 when
    undefined, as scikit-learn's `zero_division=0`).
    """

    queries: int
    accuracy: float
    in_scope_accuracy: float
    precision: float
    recall: float
    f1: float
    oos_precision: float
    oos_recall: float
    oos_queries: int
    p50_ms: float
    p95_ms: float
    cost_usd: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, rounded."""
        out: dict[str, Any] = {
            "accuracy": round(self.accuracy, 4),
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
            "oos_precision": round(self.oos_precision, 4),
            "oos_recall": round(self.oos_recall, 4),
            "p50_ms": round(self.p50_ms, 3),
            "queries": self.queries,
            "in_scope_accuracy": round(self.in_scope_accuracy, 4),
            "oos_queries": self.oos_queries,
            "p95_ms": round(self.p95_ms, 3),
        }
        if self.cost_usd is not None:
            out["cost_usd"] = round(self.cost_usd, 6)
            out["cost_per_query_usd"] = round(self.cost_usd / max(self.queries, 1), 8)
        out.update(self.extra)
        return out


def routing_metrics(
    golds: Sequence[Sequence[str]],
    chosen: Sequence[Sequence[str]],
    latencies_ms: Sequence[float] = (),
    *,
    cost_usd: float | None = None,
) -> RoutingMetrics:
    """Compute `RoutingMetrics` from gold and chosen agent sets (empty = out of scope)."""
    n = len(golds)
    correct = in_ok = 0
    p_sum = r_sum = f_sum = 0.0
    oos_true = oos_pred = oos_hit = 0
    for gold, pred in zip(golds, chosen, strict=True):
        g, c = set(gold), set(pred)
        if not c:
            oos_pred += 1
        if not g:
            oos_true += 1
            if not c:
                oos_hit += 1
                correct += 1
                p_sum += 1.0
                r_sum += 1.0
                f_sum += 1.0
            continue
        hit = len(g & c)
        if hit:
            correct += 1
            in_ok += 1
        p = hit / len(c) if c else 0.0
        r = hit / len(g)
        p_sum += p
        r_sum += r
        f_sum += 2 * p * r / (p + r) if p + r else 0.0
    lat = sorted(latencies_ms)
    in_scope = n - oos_true
    return RoutingMetrics(
        queries=n,
        accuracy=correct / n if n else 0.0,
        in_scope_accuracy=in_ok / in_scope if in_scope else 0.0,
        precision=p_sum / n if n else 0.0,
        recall=r_sum / n if n else 0.0,
        f1=f_sum / n if n else 0.0,
        oos_precision=oos_hit / oos_pred if oos_pred else 0.0,
        oos_recall=oos_hit / oos_true if oos_true else 0.0,
        oos_queries=oos_true,
        p50_ms=statistics.median(lat) if lat else 0.0,
        p95_ms=lat[max(0, math.ceil(0.95 * len(lat)) - 1)] if lat else 0.0,  # nearest rank
        cost_usd=cost_usd,
    )


async def evaluate_strategy(
    strategy: RoutingStrategy,
    registry: Registry,
    queries: Sequence[QueryRecord],
    names: dict[str, str],
    *,
    complete: Complete | None = None,
    progress: Callable[[int, int], None] | None = None,
    cost: Callable[[], float] | None = None,
) -> tuple[RoutingMetrics, list[RouteDecision]]:
    """Route every query through `strategy` (one decision each, timed) and score it.

    Without `complete` (an offline strategy), one untimed decision on the first query comes
    first, so that lazy model loading (an embedder's weights) is not counted as a decision's
    latency; with `complete` there is none, since it would spend a model call.

    Args:
        strategy: An agent-slot strategy.
        registry: Its registry (see `build_registry`).
        queries: Labelled requests (gold in original agent names).
        names: Original → registry names, from `build_registry`.
        complete: Model access for LLM strategies.
        progress: Called with (done, total).
        cost: Returns the spend so far (for LLM strategies).

    Returns:
        The metrics and every decision.
    """
    candidates = tuple(registry.agents)
    back = {v: k for k, v in names.items()}
    golds: list[tuple[str, ...]] = []
    chosen: list[tuple[str, ...]] = []
    latencies: list[float] = []
    decisions: list[RouteDecision] = []
    unknown_gold: set[str] = set()
    if complete is None and queries:
        warm = RoutingContext(
            run_id="eval-warm-up",
            step=0,
            slot="agent",
            task=queries[0].text,
            registry=registry,
            candidates=candidates,
        )
        await strategy.route(warm)
    for i, q in enumerate(queries):
        kwargs: dict[str, Any] = {}
        if complete is not None:
            kwargs["complete"] = complete
        ctx = RoutingContext(
            run_id=f"eval-{i}",
            step=0,
            slot="agent",
            task=q.text,
            registry=registry,
            candidates=candidates,
            **kwargs,
        )
        started = time.perf_counter()
        decision = await strategy.route(ctx)
        latencies.append((time.perf_counter() - started) * 1000.0)
        decisions.append(decision)
        picked = decision.agents if decision.outcome == "route" else ()
        chosen.append(tuple(back.get(a, a) for a in picked))
        unknown_gold.update(g for g in q.gold if g not in names)
        golds.append(q.gold)
        if progress is not None:
            progress(i + 1, len(queries))
    metrics = routing_metrics(golds, chosen, latencies, cost_usd=cost() if cost else None)
    if unknown_gold:
        extra = {"unknown_gold_agents": sorted(unknown_gold)[:20]}
        metrics = RoutingMetrics(**{**_fields(metrics), "extra": extra})
    return metrics, decisions


def _fields(m: RoutingMetrics) -> dict[str, Any]:
    return {f: getattr(m, f) for f in RoutingMetrics.__slots__}
