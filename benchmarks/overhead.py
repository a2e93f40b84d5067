"""Overhead of agentroute itself: per-step routing cost, trace write throughput, import time.

Three parts, each printed as a Markdown table and written to the results file:

- **(a) per-step overhead**: an agentroute run against a hand-written LangGraph graph with the
  same nodes (route → act via `Send` → refine → check → route | END), the same keyword rule and
  the same no-op agents, measured interleaved in one process and one event loop.
- **(b) trace writes**: sealed, hash-chained `DecisionRecord`s built before timing, then
  `store.append(batch)` + `store.flush()` per backend (memory, SQLite, PostgreSQL), plus the cost
  of building and sealing the records.
- **(c) import time**: `python -c "import agentroute"` against `python -c "pass"` in fresh
  subprocesses, and a check that LangGraph, LiteLLM and SQLAlchemy stay unloaded.

Timings are medians over repeats; comparisons are ratios measured in the same run (STYLE.md §20).

Usage:
    .venv/bin/python benchmarks/overhead.py                # full run, writes the results file
    .venv/bin/python benchmarks/overhead.py --quick        # CI-sized
    .venv/bin/python benchmarks/overhead.py --no-pg        # skip PostgreSQL
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import datetime as dt
import gc
import importlib.metadata
import io
import json
import os
import platform
import pstats
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Pin native thread pools before anything imports numpy (the machine is small and shared). Only the
# standard library is imported above; agentroute and LangGraph are imported inside functions.
for _var in (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
):
    os.environ.setdefault(_var, "1")

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "overhead.md"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"

BILLING_TASK = "I was charged twice for my last order, can I get a refund?"
GENERAL_TASK = "What are your opening hours on public holidays?"
TASKS = (BILLING_TASK, GENERAL_TASK)
KEYWORDS = ("refund", "charged twice")

HEAVY_MODULES = ("langgraph", "litellm", "sqlalchemy")
"""Must not be imported by `import agentroute`."""
WATCHED_MODULES = (*HEAVY_MODULES, "sqlmodel", "langchain_core", "tenacity", "numpy", "networkx")
"""Reported for information."""

OVERHEAD_TARGET = 1.5
WRITE_TARGET = 50_000
IMPORT_TARGET_S = 0.5


@dataclass(frozen=True)
class Sizes:
    """How much work each part does; `--quick` shrinks everything."""

    overhead_repeats: int
    runs_per_batch: dict[int, int]
    profile_runs: int
    write_runs: int
    decisions_per_run: int
    write_repeats: int
    build_repeats: int
    import_repeats: int


# Small batches and many repeats: on a shared machine, noise comes in bursts, and fine-grained
# interleaving spreads each burst over every variant.
FULL = Sizes(
    overhead_repeats=61,
    runs_per_batch={1: 12, 4: 4},
    profile_runs=300,
    write_runs=1_000,
    decisions_per_run=50,
    write_repeats=5,
    build_repeats=3,
    import_repeats=15,
)
QUICK = Sizes(
    overhead_repeats=7,
    runs_per_batch={1: 10, 4: 3},
    profile_runs=30,
    write_runs=100,
    decisions_per_run=50,
    write_repeats=3,
    build_repeats=3,
    import_repeats=7,
)


# -- small helpers ---------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def iqr(values: Sequence[float]) -> tuple[float, float]:
    """25th and 75th percentiles (the spread we report next to a median)."""
    if len(values) < 2:
        return (values[0], values[0])
    q = statistics.quantiles(values, n=4, method="inclusive")
    return (q[0], q[2])


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table; numbers right-aligned."""
    cells = [[_cell(v) for v in row] for row in rows]
    align = [
        "---:" if all(_NUMERIC.match(r[i]) for r in cells if r[i] not in ("", "—")) else "---"
        for i in range(len(headers))
    ]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines)


_NUMERIC = re.compile(r"^[+-]?[\d,.]+(?:[–-][\d,.]+)?[×%]?$")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if value >= 100:
            return f"{value:,.0f}"
        if value >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def short_error(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ").replace("|", "/")
    return text if len(text) <= 160 else text[:157] + "..."


def git_commit() -> str:
    """The checked-out commit, read from `.git` (the benchmark never runs git itself)."""
    git = ROOT / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head[:7]
        ref = head[5:]
        ref_file = git / ref
        if ref_file.exists():
            return ref_file.read_text().strip()[:7]
        packed = git / "packed-refs"
        for line in packed.read_text().splitlines() if packed.exists() else ():
            sha, _, name = line.partition(" ")
            if name == ref:
                return sha[:7]
    except OSError:
        pass
    return "unknown"


def machine_info(argv: Sequence[str], quick: bool) -> dict[str, Any]:
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu_model = platform.processor()
    versions = {}
    for dist in ("langgraph", "pydantic", "sqlalchemy", "sqlmodel", "psycopg"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": git_commit(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "cpu_model": cpu_model or "unknown",
        "versions": versions,
        "mode": "quick" if quick else "full",
        "command": " ".join(
            [shlex.quote(os.path.relpath(sys.executable, ROOT))] + [shlex.quote(a) for a in argv]
        ),
    }


# -- (a) per-step overhead -------------------------------------------------------------------


@dataclass
class Variant:
    """One way of doing the same run; `run(task)` does it once."""

    key: str
    label: str
    run: Callable[[str], Awaitable[Any]] | None
    unavailable: str = ""
    samples: list[float] = field(default_factory=list)
    """Wall-clock seconds per run, one per repeat."""
    cpu: list[float] = field(default_factory=list)
    """Process CPU seconds per run (every thread), one per repeat."""


def make_agents(steps: int) -> tuple[Callable[..., Awaitable[Any]], Callable[..., Awaitable[Any]]]:
    """The no-op agents both variants call: a constant answer, final only for 1-step runs."""
    from agentroute.runtime import AgentResult

    if steps == 1:

        async def billing(ctx: Any, task: str) -> Any:
            """Answers billing questions (no-op)."""
            return "ok"

        async def general(ctx: Any, task: str) -> Any:
            """Answers everything else (no-op)."""
            return "ok"

    else:

        async def billing(ctx: Any, task: str) -> Any:
            """Answers billing questions (no-op, asks to route again)."""
            return AgentResult(output="ok", final=False)

        async def general(ctx: Any, task: str) -> Any:
            """Answers everything else (no-op, asks to route again)."""
            return AgentResult(output="ok", final=False)

    return billing, general


def make_router(steps: int, store: Any) -> Any:
    """An agentroute `Router` with a keyword rule over the two no-op agents."""
    from agentroute import Keywords, Registry, Router, Rule, Rules
    from agentroute.registry import LimitsSpec

    registry = Registry()
    for fn in make_agents(steps):
        registry.agent(fn)
    strategy = Rules([Rule("billing", Keywords(*KEYWORDS), ("billing",))], default=("general",))
    # loop_limit is raised so that 4-step runs with a constant answer end by the step limit,
    # as the baseline does, rather than by loop detection.
    limits = LimitsSpec(max_steps=steps, loop_limit=100)
    router = Router(registry, agent=strategy, store=store, limits=limits, name="bench")
    return router.compile()


def make_baseline(steps: int, *, async_edges: bool) -> Any:
    """A hand-written LangGraph graph doing the same hops as the Router, without agentroute.

    Same node structure (route → act via `Send` → refine → check → route | END), same keyword
    rule, same no-op agent functions, same step limit. No recording, no strategies, no context
    objects. `async_edges=False` writes the two routing functions as plain `def`s, which
    LangGraph runs in a worker thread under `ainvoke`.
    """
    from typing import Annotated, TypedDict

    from langgraph.graph import END, START, StateGraph
    from langgraph.types import Send

    from agentroute.runtime import AgentResult

    billing, general = make_agents(steps)
    functions = {"billing": billing, "general": general}
    patterns = [
        re.compile(r"\b" + r"\s+".join(map(re.escape, w.split())) + r"\b", re.IGNORECASE)
        for w in KEYWORDS
    ]

    def merge(left: list[dict[str, Any]], right: list[dict[str, Any]] | None) -> list[Any]:
        return [] if right is None else [*left, *right]

    # Functional form: the class form would leave `merge` as an unresolvable string annotation
    # under `from __future__ import annotations`.
    State = TypedDict(  # noqa: UP013
        "State",
        {
            "task": str,
            "step": int,
            "previous": str | None,
            "answer": str | None,
            "agents": list[str],
            "branches": Annotated[list[dict[str, Any]], merge],
            "status": str | None,
            "reason": str,
        },
    )

    async def route(state: dict[str, Any]) -> dict[str, Any]:
        reset: dict[str, Any] = {"branches": None, "agents": []}
        if state["step"] >= steps:
            return {**reset, "status": "step_limit", "reason": "step limit"}
        hit = any(p.search(state["task"]) for p in patterns)
        return {**reset, "agents": ["billing" if hit else "general"]}

    def fan_out_sync(state: dict[str, Any]) -> Any:
        if state["status"] and not state["agents"]:
            return END
        return [
            Send(
                "act",
                {
                    "task": state["task"],
                    "step": state["step"],
                    "previous": state["previous"],
                    "agent": a,
                },
            )
            for a in state["agents"]
        ]

    async def fan_out_async(state: dict[str, Any]) -> Any:
        return fan_out_sync(state)

    async def act(branch: dict[str, Any]) -> dict[str, Any]:
        raw = await functions[branch["agent"]](None, branch["task"])
        if isinstance(raw, AgentResult):
            out = {"agent": branch["agent"], "output": raw.output, "final": raw.final}
        else:
            out = {"agent": branch["agent"], "output": raw, "final": True}
        return {"branches": [out]}

    async def refine(state: dict[str, Any]) -> dict[str, Any]:
        answers = [b["output"] for b in state["branches"]]
        return {"answer": answers[0] if len(answers) == 1 else "\n\n".join(answers)}

    async def check(state: dict[str, Any]) -> dict[str, Any]:
        if any(not b["final"] for b in state["branches"]):
            return {"step": state["step"] + 1, "previous": state["answer"]}
        return {"status": "completed", "reason": "the agents answered"}

    def next_sync(state: dict[str, Any]) -> str:
        return END if state["status"] else "route"

    async def next_async(state: dict[str, Any]) -> str:
        return next_sync(state)

    # Annotate with the real TypedDict, as the Router's node methods are (`state: RunState`),
    # so LangGraph infers the same input schemas for both graphs.
    for fn in (route, refine, check, fan_out_sync, fan_out_async):
        fn.__annotations__["state"] = State

    graph: Any = StateGraph(State)
    graph.add_node("route", route)
    graph.add_node("act", act)
    graph.add_node("refine", refine)
    graph.add_node("check", check)
    graph.add_edge(START, "route")
    graph.add_conditional_edges(
        "route", fan_out_async if async_edges else fan_out_sync, ["act", END]
    )
    graph.add_edge("act", "refine")
    graph.add_edge("refine", "check")
    graph.add_conditional_edges("check", next_async if async_edges else next_sync, ["route", END])
    compiled = graph.compile()
    config = {"configurable": {"thread_id": "bench"}, "recursion_limit": steps * 4 + 8}

    async def run(task: str) -> Any:
        state = {
            "task": task,
            "step": 0,
            "previous": None,
            "answer": None,
            "agents": [],
            "branches": [],
            "status": None,
            "reason": "",
        }
        return await compiled.ainvoke(state, config=config)

    return run


def _check_equivalent(steps: int, router_result: Any, baseline_state: Any) -> None:
    """Both variants must take the same hops, or the comparison means nothing."""
    expected_status = "completed" if steps == 1 else "step_limit"
    if router_result.status != expected_status or len(router_result.agents) != steps:
        msg = f"agentroute run did not take {steps} step(s): {router_result!r}"
        raise RuntimeError(msg)
    # The baseline's check node bumps `step` only when the run goes on, as the Router's does.
    expected_step = 0 if steps == 1 else steps
    if baseline_state["status"] != expected_status or baseline_state["step"] != expected_step:
        msg = f"baseline run did not take {steps} step(s): {baseline_state!r}"
        raise RuntimeError(msg)


async def _time_batch(run: Callable[[str], Awaitable[Any]], n: int) -> tuple[float, float]:
    """Wall-clock and process-CPU seconds per run over `n` runs, alternating the two tasks.

    CPU time (all threads of this process) is reported next to wall-clock time because it is
    far less sensitive to other tenants of a shared machine; wall-clock time also counts the
    latency of thread hand-offs, which CPU time does not.
    """
    gc.collect()
    cpu0 = time.process_time()
    started = time.perf_counter()
    for i in range(n):
        await run(TASKS[i & 1])
    wall = time.perf_counter() - started
    return wall / n, (time.process_time() - cpu0) / n


async def measure_overhead(sizes: Sizes, tmp: Path) -> dict[str, Any]:
    """Part (a): interleaved repeats of every variant, per step count."""
    from agentroute.stores import InMemoryTraceStore

    scenarios: list[dict[str, Any]] = []
    for steps in (1, 4):
        variants = [
            Variant(
                "baseline",
                "bare LangGraph (async edges) — baseline",
                make_baseline(steps, async_edges=True),
            ),
            Variant(
                "baseline_sync",
                "bare LangGraph, sync edge functions (diagnostic)",
                make_baseline(steps, async_edges=False),
            ),
        ]
        memory_router = make_router(steps, InMemoryTraceStore())
        variants.append(
            Variant("agentroute_memory", "agentroute, store=memory://", memory_router.run)
        )
        sqlite_router = None
        try:
            sqlite_router = make_router(steps, f"sqlite:///{tmp / f'overhead-{steps}.db'}")
            await sqlite_router.run(BILLING_TASK)
            variants.append(
                Variant(
                    "agentroute_sqlite", "agentroute, SqlTraceStore (SQLite)", sqlite_router.run
                )
            )
        except Exception as exc:
            variants.append(
                Variant(
                    "agentroute_sqlite",
                    "agentroute, SqlTraceStore (SQLite)",
                    None,
                    unavailable=short_error(exc),
                )
            )
        # Equivalence and warm-up (compiles, caches, first-touch allocations).
        _check_equivalent(
            steps, await memory_router.run(BILLING_TASK), await variants[0].run(BILLING_TASK)
        )  # type: ignore[misc]
        live = [v for v in variants if v.run is not None]
        n = sizes.runs_per_batch[steps]
        for v in live:
            await _time_batch(v.run, max(5, n // 5))  # type: ignore[arg-type]
        for rep in range(sizes.overhead_repeats):
            # A B C D, then B C D A, ...: interleaved so drift hits every variant alike.
            order = live[rep % len(live) :] + live[: rep % len(live)]
            for v in order:
                wall, cpu = await _time_batch(v.run, n)  # type: ignore[arg-type]
                v.samples.append(wall)
                v.cpu.append(cpu)
            print(f"  (a) {steps}-step repeat {rep + 1}/{sizes.overhead_repeats}", file=sys.stderr)
        if sqlite_router is not None:
            sqlite_router.close()
        base, base_cpu = variants[0].samples, variants[0].cpu
        rows = []
        for v in variants:
            if v.run is None:
                rows.append({"key": v.key, "label": v.label, "unavailable": v.unavailable})
                continue
            us = [s * 1e6 for s in v.samples]
            ratios = [a / b for a, b in zip(v.samples, base, strict=True)]
            cpu_ratios = [a / b for a, b in zip(v.cpu, base_cpu, strict=True)]
            added = [(a - b) * 1e6 / steps for a, b in zip(v.samples, base, strict=True)]
            rows.append(
                {
                    "key": v.key,
                    "label": v.label,
                    "median_us_per_run": median(us),
                    "iqr_us_per_run": iqr(us),
                    "median_us_per_step": median(us) / steps,
                    "ratio": median(ratios),
                    "ratio_iqr": iqr(ratios),
                    "added_us_per_step": median(added),
                    "median_cpu_us_per_run": median(v.cpu) * 1e6,
                    "cpu_ratio": median(cpu_ratios),
                    "samples_s_per_run": v.samples,
                    "cpu_samples_s_per_run": v.cpu,
                }
            )
        scenarios.append({"steps": steps, "runs_per_batch": n, "variants": rows})
    return {"scenarios": scenarios, "repeats": sizes.overhead_repeats}


def overhead_table(result: dict[str, Any]) -> str:
    rows = []
    for sc in result["scenarios"]:
        for v in sc["variants"]:
            name = f"{sc['steps']}-step"
            if "unavailable" in v:
                rows.append([name, v["label"], f"unavailable: {v['unavailable']}"] + [""] * 6)
                continue
            lo, hi = v["iqr_us_per_run"]
            ratio = f"{v['ratio']:.2f}×"
            added = "—" if v["key"] == "baseline" else f"{v['added_us_per_step']:+,.0f}"
            rows.append(
                [
                    name,
                    v["label"],
                    f"{v['median_us_per_run']:,.0f}",
                    f"{lo:,.0f}–{hi:,.0f}",
                    f"{v['median_us_per_step']:,.0f}",
                    ratio,
                    added,
                    f"{v['median_cpu_us_per_run']:,.0f}",
                    f"{v['cpu_ratio']:.2f}×",
                ]
            )
    return table(
        [
            "run",
            "variant",
            "median µs/run",
            "IQR µs/run",
            "µs/step",
            "ratio vs baseline",
            "added µs/step",
            "CPU µs/run",
            "CPU ratio",
        ],
        rows,
    )


def overhead_verdict(result: dict[str, Any]) -> str:
    lines = []
    for sc in result["scenarios"]:
        for v in sc["variants"]:
            if v["key"] == "agentroute_memory":
                ok = v["ratio"] <= OVERHEAD_TARGET
                lines.append(
                    f"- {sc['steps']}-step, memory store: {v['ratio']:.2f}× the baseline in "
                    f"wall-clock time, {v['cpu_ratio']:.2f}× in CPU time "
                    f"(target ≤ {OVERHEAD_TARGET}×, wall-clock): **{'PASS' if ok else 'FAIL'}**"
                )
    return "\n".join(lines)


# -- (a') profile ----------------------------------------------------------------------------

_STDLIB = str(Path(json.__file__).resolve().parent.parent)


_C_MODULE_GROUPS = {
    "_queue": "event loop wait / thread hand-off (C)",
    "select": "event loop wait / thread hand-off (C)",
    "_thread": "event loop wait / thread hand-off (C)",
    "pydantic_core": "pydantic",
    "_hashlib": "hashing + JSON (C)",
    "_json": "hashing + JSON (C)",
}
_STDLIB_GROUPS = {
    "asyncio": "asyncio (stdlib)",
    "selectors": "asyncio (stdlib)",
    "concurrent": "threads (stdlib)",
    "threading": "threads (stdlib)",
    "queue": "threads (stdlib)",
    "json": "hashing + JSON (stdlib)",
    "hashlib": "hashing + JSON (stdlib)",
}


def _package_of(filename: str, funcname: str) -> str:
    """Group a profile entry by package, C builtins by the module they belong to."""
    if filename == "~":
        m = re.search(r"of '([\w.]+)'", funcname) or re.search(r"method ([\w.]+)\.", funcname)
        mod = (m.group(1) if m else "builtins").split(".")[0]
        return _C_MODULE_GROUPS.get(mod, "other builtins (C)")
    path = filename.replace("\\", "/")
    if "/site-packages/" in path:
        return path.split("/site-packages/", 1)[1].split("/", 1)[0]
    if "/agentroute/" in path:
        return "agentroute"
    if path.startswith(_STDLIB):
        top = path[len(_STDLIB) :].lstrip("/").split("/", 1)[0].removesuffix(".py")
        return _STDLIB_GROUPS.get(top, "other stdlib")
    return "other"


def _short_path(filename: str) -> str:
    path = filename.replace("\\", "/")
    for marker in ("/site-packages/", str(ROOT) + "/"):
        if marker in path:
            return path.split(marker, 1)[1]
    if path.startswith(_STDLIB):
        return "stdlib/" + path[len(_STDLIB) :].lstrip("/")
    return path


def profile_router(sizes: Sizes) -> dict[str, Any]:
    """Profile 4-step agentroute runs on the memory store (cProfile, main thread only)."""
    from agentroute.stores import InMemoryTraceStore

    router = make_router(4, InMemoryTraceStore())

    async def runs() -> None:
        await router.run(BILLING_TASK)  # warm-up outside the measured share
        profiler.enable()
        for i in range(sizes.profile_runs):
            await router.run(TASKS[i & 1])
        profiler.disable()

    profiler = cProfile.Profile()
    asyncio.run(runs())
    stats = pstats.Stats(profiler, stream=io.StringIO())
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values()) or 1.0

    def entry(key: Any, value: Any) -> dict[str, Any]:
        filename, line, func = key
        _, nc, tt, ct, _ = value
        where = func if filename == "~" else f"{_short_path(filename)}:{line}({func})"
        return {
            "function": where,
            "calls": nc,
            "tottime_s": tt,
            "cumtime_s": ct,
            "cum_share": ct / total,
            "self_share": tt / total,
        }

    # Cumulative top 10 over library code only: the event loop and this script are ~100% by
    # construction and would crowd out everything useful.
    library = [
        (k, v)
        for k, v in raw.items()
        if k[0] != "~"
        and ("/site-packages/" in k[0] or "/agentroute/" in k[0])
        and "/benchmarks/" not in k[0]
    ]
    cumulative = [entry(k, v) for k, v in sorted(library, key=lambda kv: -kv[1][3])[:10]]
    own = [entry(k, v) for k, v in sorted(raw.items(), key=lambda kv: -kv[1][2])[:10]]
    agentroute_cum = [
        entry(k, v)
        for k, v in sorted(
            ((k, v) for k, v in library if "/agentroute/" in k[0] and "site-packages" not in k[0]),
            key=lambda kv: -kv[1][3],
        )[:10]
    ]
    by_package: dict[str, float] = {}
    for (filename, _, func), value in raw.items():
        pkg = _package_of(filename, func)
        by_package[pkg] = by_package.get(pkg, 0.0) + value[2]
    packages = sorted(by_package.items(), key=lambda kv: -kv[1])
    return {
        "runs": sizes.profile_runs,
        "steps": 4,
        "total_s": total,
        "us_per_run_profiled": total / sizes.profile_runs * 1e6,
        "top_cumulative": cumulative,
        "top_cumulative_agentroute": agentroute_cum,
        "top_self": own,
        "by_package": [{"package": p, "self_s": s, "share": s / total} for p, s in packages],
    }


def profile_tables(prof: dict[str, Any]) -> str:
    def rows(entries: list[dict[str, Any]], key: str) -> list[list[Any]]:
        return [
            [
                i + 1,
                f"`{e['function']}`",
                e["calls"],
                f"{e[key] * 1e6 / prof['runs']:,.0f}",
                f"{e['cum_share' if key == 'cumtime_s' else 'self_share']:.1%}",
            ]
            for i, e in enumerate(entries)
        ]

    parts = [
        "Top 10 by cumulative time (library code: agentroute + site-packages):",
        "",
        table(
            ["#", "function", "calls", "cum µs/run", "share"],
            rows(prof["top_cumulative"], "cumtime_s"),
        ),
        "",
        "Top 10 agentroute functions by cumulative time:",
        "",
        table(
            ["#", "function", "calls", "cum µs/run", "share"],
            rows(prof["top_cumulative_agentroute"], "cumtime_s"),
        ),
        "",
        "Top 10 by self time (everything, C builtins included):",
        "",
        table(
            ["#", "function", "calls", "self µs/run", "share"], rows(prof["top_self"], "tottime_s")
        ),
        "",
        "Self time by package:",
        "",
        table(
            ["package", "self µs/run", "share"],
            [
                [p["package"], f"{p['self_s'] * 1e6 / prof['runs']:,.0f}", f"{p['share']:.1%}"]
                for p in prof["by_package"]
            ],
        ),
    ]
    return "\n".join(parts)


# -- (b) trace writes ------------------------------------------------------------------------


_AGENTS = ("billing", "shipping", "returns", "account", "general")


def build_records(runs: int, per_run: int) -> list[Any]:
    """`runs` chains of one `RunRecord` then `per_run` realistic, sealed `DecisionRecord`s."""
    out: list[Any] = []
    for r in range(runs):
        out.extend(build_chain(r, per_run))
    return out


def build_chain(r: int, per_run: int) -> list[Any]:
    """Run number `r`: one `RunRecord` then `per_run` sealed, chained `DecisionRecord`s."""
    from agentroute.stores import GENESIS_HASH, CandidateRecord, DecisionRecord, RunRecord

    agents = _AGENTS
    params = {
        "rules": [
            {
                "name": a,
                "when": {"keywords": [a, f"{a} issue"], "mode": "any", "on": "task"},
                "choose": [a],
                "then": "finish",
            }
            for a in agents
        ],
        "default": ["general"],
    }
    out: list[Any] = []
    now = time.time()
    run_id = uuid.UUID(int=r + 1).hex
    rec = RunRecord(
        run_id=run_id,
        seq=0,
        created_at=now,
        prev_hash=GENESIS_HASH,
        task=f"Customer request number {r}: I was charged twice, please refund me.",
        router={
            "name": "bench",
            "agent": {"strategy": "rules", "version": "1", "params": params},
        },
        registry_hash="ab" * 32,
        metadata={"tenant": "acme", "channel": "chat"},
    ).sealed()
    out.append(rec)
    prev = rec.hash
    for d in range(per_run):
        winner = agents[(r + d) % len(agents)]
        rec = DecisionRecord(
            run_id=run_id,
            seq=d + 1,
            created_at=now + d * 1e-3,
            prev_hash=prev,
            step=d,
            slot="agent",
            strategy="rules",
            # As the runtime writes them: the strategy's parameters live in the run's start
            # record (`router`), not in every decision.
            chosen=[winner],
            candidates=[
                CandidateRecord(
                    name=a,
                    score=round(1.0 / (1 + i + (d % 3)), 4),
                    detail={
                        "rule": a,
                        "keywords": [a] if a == winner else [],
                        "similarity": round(0.9 - 0.1 * i, 3),
                    },
                )
                for i, a in enumerate(agents)
            ],
            reason=f"rule {winner!r} fired",
            evidence={
                "fired": [winner],
                "then": "finish",
                "margin": round(0.1 + 0.01 * (d % 7), 3),
            },
            latency_ms=0.05 + 0.001 * d,
        ).sealed()
        out.append(rec)
        prev = rec.hash
    return out


@contextmanager
def pg_schema(url: str, tag: str) -> Iterator[str]:
    """A fresh PostgreSQL schema for one repeat; yields a URL whose search_path points at it."""
    import psycopg

    schema = f"bench_overhead_{os.getpid()}_{tag}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in url else "?"
    try:
        yield f"{url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@contextmanager
def open_backend(backend: str, tmp: Path, pg_url: str, tag: str) -> Iterator[Any]:
    from agentroute.stores import InMemoryTraceStore, open_store

    if backend == "memory":
        yield InMemoryTraceStore()
        return
    if backend == "sqlite":
        path = tmp / f"writes-{tag}.db"
        store = open_store(f"sqlite:///{path}")
        try:
            yield store
        finally:
            store.close()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    with pg_schema(pg_url, tag) as url:
        store = open_store(url)
        try:
            yield store
        finally:
            store.close()
            _dispose(store)


def _dispose(store: Any) -> None:
    # Release pooled connections before the schema is dropped (DROP waits on open sessions).
    engine = getattr(store, "engine", None) or getattr(store, "_engine", None)
    if engine is not None and hasattr(engine, "dispose"):
        engine.dispose()


def write_once(store: Any, records: list[Any], mode: str) -> float:
    """Seconds to append every record and flush."""
    store.run_ids()  # connect and create tables outside the timed region
    gc.collect()
    started = time.perf_counter()
    if mode == "batched":
        store.append(records)
    else:
        for rec in records:
            store.append([rec])
    store.flush()
    return time.perf_counter() - started


def measure_writes(sizes: Sizes, tmp: Path, pg_url: str | None) -> dict[str, Any]:
    """Part (b): build+seal cost, then append+flush throughput per backend and mode."""
    runs, per_run = sizes.write_runs, sizes.decisions_per_run
    n = runs * (per_run + 1)
    decisions = runs * per_run
    # Steady state, as during runs: each chain is dropped once built, so the heap stays small.
    build_s: list[float] = []
    for _ in range(sizes.build_repeats):
        gc.collect()
        started = time.perf_counter()
        for r in range(runs):
            build_chain(r, per_run)
        build_s.append(time.perf_counter() - started)
    # The fixture for the writes: every record kept alive, so the cyclic GC walks an ever
    # larger heap while building it (one measurement, for information).
    gc.collect()
    started = time.perf_counter()
    records = build_records(runs, per_run)
    fixture_s = time.perf_counter() - started
    # Exempt the fixture from GC traversal during the timed writes: we measure the store, not
    # the collector walking 50k prebuilt records.
    gc.collect()
    gc.freeze()

    backends = ["memory", "sqlite"] + (["postgresql"] if pg_url else [])
    modes = ["batched", "per-record"]
    samples: dict[tuple[str, str], list[float]] = {(b, m): [] for b in backends for m in modes}
    errors: dict[str, str] = {} if pg_url else {"postgresql": "skipped (--no-pg)"}
    checks: dict[str, str] = {}
    for rep in range(sizes.write_repeats):
        for b in backends:
            if b in errors:
                continue
            for m in modes:
                tag = f"{rep}_{m.replace('-', '')}"
                try:
                    with open_backend(b, tmp, pg_url or "", tag) as store:
                        samples[(b, m)].append(write_once(store, records, m))
                        if rep == 0 and m == "batched":
                            checks[b] = _check_written(store, records, runs)
                except Exception as exc:
                    errors[b] = short_error(exc)
                    break
        print(f"  (b) repeat {rep + 1}/{sizes.write_repeats}", file=sys.stderr)

    gc.unfreeze()
    del records
    mem = samples.get(("memory", "batched")) or [float("nan")]
    rows = []
    for b in ["memory", "sqlite", "postgresql"]:
        if b in errors:
            rows.append({"backend": b, "unavailable": errors[b]})
            continue
        for m in modes:
            s = samples[(b, m)]
            if not s:
                continue
            rows.append(
                {
                    "backend": b,
                    "mode": m,
                    "median_s": median(s),
                    "records_per_s": n / median(s),
                    "decisions_per_s": decisions / median(s),
                    "iqr_records_per_s": tuple(n / x for x in reversed(iqr(s))),
                    "vs_memory": median(s) / median(mem),
                    "samples_s": s,
                    "check": checks.get(b, ""),
                }
            )
    return {
        "runs": runs,
        "decisions_per_run": per_run,
        "records": n,
        "decisions": decisions,
        "build": {
            "samples_s": build_s,
            "median_s": median(build_s),
            "records_per_s": n / median(build_s),
            "us_per_record": median(build_s) / n * 1e6,
            "fixture_s": fixture_s,
            "fixture_records_per_s": n / fixture_s,
            "fixture_us_per_record": fixture_s / n * 1e6,
        },
        "writes": rows,
        "repeats": sizes.write_repeats,
    }


def _check_written(store: Any, records: list[Any], runs: int) -> str:
    ids = store.run_ids()
    if len(ids) != runs:
        msg = f"{type(store).__name__} holds {len(ids)} runs after the write, expected {runs}"
        raise RuntimeError(msg)
    report = store.verify(records[-1].run_id)
    if not report.ok:
        msg = f"hash chain broken after the write: {report.problems[:3]}"
        raise RuntimeError(msg)
    return f"{runs} runs present, last chain verified"


def writes_tables(res: dict[str, Any]) -> str:
    b = res["build"]
    build = table(
        ["work", "records", "median s", "records/s", "µs/record"],
        [
            [
                f"build + seal (hash chain), steady state, median of {len(b['samples_s'])}",
                res["records"],
                b["median_s"],
                b["records_per_s"],
                b["us_per_record"],
            ],
            [
                "build + seal, all kept alive (the write fixture; 1 measurement)",
                res["records"],
                b["fixture_s"],
                b["fixture_records_per_s"],
                b["fixture_us_per_record"],
            ],
        ],
    )
    rows = []
    for w in res["writes"]:
        if "unavailable" in w:
            rows.append([w["backend"], "—", f"unavailable: {w['unavailable']}", "", "", "", ""])
            continue
        lo, hi = w["iqr_records_per_s"]
        rows.append(
            [
                w["backend"],
                w["mode"],
                f"{w['median_s']:.3f}",
                f"{w['decisions_per_s']:,.0f}",
                f"{w['records_per_s']:,.0f}",
                f"{lo:,.0f}–{hi:,.0f}",
                f"{w['vs_memory']:.1f}×",
            ]
        )
    writes = table(
        [
            "backend",
            "mode",
            "median s",
            "decisions/s",
            "records/s",
            "IQR records/s",
            "time vs memory batched",
        ],
        rows,
    )
    return build + "\n\n" + writes


def writes_verdict(res: dict[str, Any]) -> str:
    for w in res["writes"]:
        if w["backend"] == "sqlite" and w.get("mode") == "batched":
            ok = w["decisions_per_s"] >= WRITE_TARGET
            return (
                f"- SQLite batched: {w['decisions_per_s']:,.0f} decisions/s "
                f"(target ≥ {WRITE_TARGET:,}/s): **{'PASS' if ok else 'FAIL'}**"
            )
    return "- SQLite batched: not measured (store unavailable)"


# -- (c) import time -------------------------------------------------------------------------


def measure_import(sizes: Sizes) -> dict[str, Any]:
    """Part (c): fresh interpreters, `pass` and `import agentroute` interleaved."""
    env = dict(os.environ)

    def timed(code: str) -> float:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT)
        return time.perf_counter() - started

    timed("import agentroute")  # write .pyc files outside the measurement
    bare: list[float] = []
    imp: list[float] = []
    for i in range(sizes.import_repeats):
        pair = [("pass", bare), ("import agentroute", imp)]
        for code, into in pair if i % 2 == 0 else reversed(pair):
            into.append(timed(code))
    probe = (
        "import json, sys, agentroute; "
        f"print(json.dumps({{m: m in sys.modules for m in {list(WATCHED_MODULES)!r}}}))"
    )
    loaded = json.loads(
        subprocess.run(
            [sys.executable, "-c", probe],
            check=True,
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout
    )
    diffs = [a - b for a, b in zip(imp, bare, strict=True)]
    by_package: dict[str, list[float]] = {}
    for _ in range(5):
        trace = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import agentroute"],
            check=True,
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stderr
        totals: dict[str, float] = {}
        for line in trace.splitlines():
            m = re.match(r"import time:\s+(\d+) \|\s+\d+ \|(\s*)(\S+)", line)
            if m is None:
                continue
            name = m.group(3)
            parts = name.split(".")
            group = ".".join(parts[:2]) if parts[0] == "agentroute" else parts[0]
            totals[group] = totals.get(group, 0.0) + int(m.group(1)) / 1e6
        for group, seconds in totals.items():
            by_package.setdefault(group, []).append(seconds)
    breakdown = sorted(
        ((g, median(v + [0.0] * (5 - len(v)))) for g, v in by_package.items()),
        key=lambda gv: -gv[1],
    )
    return {
        "repeats": sizes.import_repeats,
        "pass_s": bare,
        "import_s": imp,
        "median_pass_s": median(bare),
        "median_import_s": median(imp),
        "median_difference_s": median(diffs),
        "loaded_after_import": loaded,
        "importtime_self_s": breakdown,
    }


def import_tables(res: dict[str, Any]) -> str:
    rows = [
        ['python -c "pass"', res["median_pass_s"] * 1e3, "—"],
        [
            'python -c "import agentroute"',
            res["median_import_s"] * 1e3,
            f"{res['median_import_s'] / res['median_pass_s']:.1f}×",
        ],
        ["difference (median of paired differences)", res["median_difference_s"] * 1e3, "—"],
    ]
    t1 = table(["command", "median ms", "ratio vs pass"], rows)
    mods = [
        [
            m,
            "yes" if res["loaded_after_import"][m] else "no",
            "must be no" if m in HEAVY_MODULES else "info",
        ]
        for m in WATCHED_MODULES
    ]
    t2 = table(["module", "in sys.modules after `import agentroute`", ""], mods)
    total = sum(s for _, s in res["importtime_self_s"]) or 1.0
    top = [[f"`{g}`", s * 1e3, f"{s / total:.0%}"] for g, s in res["importtime_self_s"][:12]]
    t3 = table(["module group", "self ms", "share"], top)
    return (
        t1 + "\n\n" + t2 + "\n\nWhere import time goes (`python -X importtime`, self time "
        "summed per package — per subpackage for agentroute — median of 5 runs; "
        f"{total * 1e3:,.0f} ms in all, interpreter start-up excluded):\n\n" + t3
    )


def import_verdict(res: dict[str, Any]) -> str:
    ok_time = res["median_import_s"] <= IMPORT_TARGET_S
    leaked = [m for m in HEAVY_MODULES if res["loaded_after_import"][m]]
    return (
        f"- median `import agentroute` {res['median_import_s']:.3f} s "
        f"(target ≤ {IMPORT_TARGET_S} s): **{'PASS' if ok_time else 'FAIL'}**\n"
        f"- heavy engines not imported ({', '.join(HEAVY_MODULES)}): "
        f"**{'PASS' if not leaked else 'FAIL: ' + ', '.join(leaked)}**"
    )


# -- report ----------------------------------------------------------------------------------


def render(info: dict[str, Any], parts: dict[str, Any]) -> str:
    out = [
        "# Overhead benchmark",
        "",
        "Generated by `benchmarks/overhead.py`; do not edit by hand. Timings are medians over "
        "repeats; ratios are taken against a baseline measured in the same run (per-repeat "
        "pairs, then the median).",
        "",
        f"- date: {info['date']}",
        f"- commit: `{info['commit']}`",
        f"- command: `{info['command']}` ({info['mode']} mode)",
        f"- machine: {info['cpu_count']} CPUs ({info['cpus_usable']} usable), "
        f"{info['cpu_model']}, {info['platform']}",
        f"- Python {info['python']} ({info['implementation']}); "
        + ", ".join(f"{k} {v}" for k, v in info["versions"].items()),
        "",
    ]
    if "overhead" in parts:
        a = parts["overhead"]
        runs = ", ".join(
            f"{sc['runs_per_batch']} runs/batch for {sc['steps']}-step" for sc in a["scenarios"]
        )
        out += [
            "## (a) Per-step overhead vs a bare LangGraph graph",
            "",
            f"{a['repeats']} interleaved repeats ({runs}); tasks alternate between a billing "
            "request (keyword rule fires) and a general one (default). No model calls. "
            "1-step runs answer at once; 4-step runs return `AgentResult(final=False)` and end "
            "at `max_steps=4` (the baseline loops the same way). `added µs/step` = "
            "median over repeats of (variant − baseline) / steps, paired per repeat. "
            "CPU columns: process CPU time of all threads (robust to other tenants, blind to "
            "thread hand-off latency).",
            "",
            overhead_table(a),
            "",
            overhead_verdict(a),
            "",
        ]
    if "profile" in parts:
        p = parts["profile"]
        out += [
            "### Profile: where an agentroute run spends its time",
            "",
            f"cProfile over {p['runs']} 4-step runs, `store=memory://` (main thread only; "
            f"{p['us_per_run_profiled']:,.0f} µs/run under the profiler). `calls` counts "
            "coroutine resumptions as calls.",
            "",
            profile_tables(p),
            "",
        ]
    elif "profile_error" in parts:
        out += ["### Profile", "", f"unavailable: {parts['profile_error']}", ""]
    if "writes" in parts:
        b = parts["writes"]
        out += [
            "## (b) Trace write throughput",
            "",
            f"{b['runs']:,} runs × (1 `RunRecord` + {b['decisions_per_run']} `DecisionRecord`s "
            f"with 5 scored candidates, reason, evidence) = {b['records']:,} sealed records, "
            f"built before timing. Timed: `store.append(...)` + `store.flush()` into a fresh "
            f"store (median of {b['repeats']} repeats). `batched` = one `append` of all "
            "records; `per-record` = one `append([rec])` per record, as `RunRecorder` does "
            "during a run.",
            "",
            writes_tables(b),
            "",
            writes_verdict(b),
            "",
        ]
    if "import" in parts:
        c = parts["import"]
        out += [
            "## (c) Import time",
            "",
            f"{c['repeats']} fresh interpreters per command, interleaved.",
            "",
            import_tables(c),
            "",
            import_verdict(c),
            "",
        ]
    for name, err in parts.get("errors", {}).items():
        out += [f"## {name}", "", f"unavailable: {err}", ""]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Measure agentroute's own overhead: per-step routing cost against bare "
        "LangGraph, trace write throughput, and import time."
    )
    parser.add_argument("--quick", action="store_true", help="CI-sized run (seconds, noisier)")
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="Markdown results file (a .json with raw samples goes next to it)",
    )
    parser.add_argument("--pg", default=DEFAULT_PG, help="PostgreSQL URL for part (b)")
    parser.add_argument("--no-pg", action="store_true", help="skip PostgreSQL")
    parser.add_argument(
        "--only",
        action="append",
        choices=["overhead", "writes", "import"],
        help="run only these parts (repeatable); default: all",
    )
    args = parser.parse_args(argv)
    argv_list = list(sys.argv if argv is None else ["benchmarks/overhead.py", *argv])
    sizes = QUICK if args.quick else FULL
    wanted = set(args.only or ["overhead", "writes", "import"])
    info = machine_info(argv_list, args.quick)
    parts: dict[str, Any] = {"errors": {}}

    # Import time first, before this process loads anything heavy and warms the page cache.
    if "import" in wanted:
        print("(c) import time ...", file=sys.stderr)
        parts["import"] = measure_import(sizes)
    with tempfile.TemporaryDirectory(prefix="agentroute-bench-") as tmpdir:
        tmp = Path(tmpdir)
        if "overhead" in wanted:
            print("(a) per-step overhead ...", file=sys.stderr)
            parts["overhead"] = asyncio.run(measure_overhead(sizes, tmp))
            try:
                parts["profile"] = profile_router(sizes)
            except Exception as exc:
                parts["profile_error"] = short_error(exc)
        if "writes" in wanted:
            print("(b) trace writes ...", file=sys.stderr)
            parts["writes"] = measure_writes(sizes, tmp, None if args.no_pg else args.pg)

    report = render(info, parts)
    print(report)
    out: Path = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report + "\n", encoding="utf-8")
    out.with_suffix(".json").write_text(
        json.dumps(
            {"machine": info, "sizes": dataclasses.asdict(sizes), **parts}, indent=2, default=str
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"\nwrote {out} and {out.with_suffix('.json')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
