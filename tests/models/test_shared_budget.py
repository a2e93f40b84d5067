"""Shared hard budgets: one `Budget(key=...)` across branches, concurrent runs and processes.

The proof of the design: many runs in several processes charge one key in SQLite and in
PostgreSQL, and the key's settled spend never passes its limit (compared in exact integer
nano-dollars), while every cent charged is accounted for in some run's trace.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

import agentroute as ar
from agentroute.errors import BudgetExceeded, ConfigurationError
from agentroute.models import Budget
from agentroute.models._budget import SharedBudgetLedger, open_ledger, to_nano
from agentroute.registry import LimitsSpec
from agentroute.routing import Static
from agentroute.stores import InMemoryTraceStore, SqlTraceStore
from agentroute.testing import ScriptedModelClient

PG_URL = os.environ.get("AGENTROUTE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
LIMIT_USD = 0.01
REPLY = "x" * 200  # 50 output tokens: each call costs close to its reservation
CALLS_PER_RUN = 3


def _registry() -> ar.Registry:
    reg = ar.Registry()
    reg.model(
        "strong",
        "openai/gpt-4o",
        tier="strong",
        input_price_per_mtok=2.5,
        output_price_per_mtok=10.0,
        max_output_tokens=64,
    )

    @reg.agent()
    async def worker(ctx: ar.AgentContext, task: str) -> str:
        """Makes a few model calls."""
        out = ""
        for i in range(CALLS_PER_RUN):
            out = await ctx.complete(f"{task} part {i}")
        return out

    return reg


async def _many_runs(store: ar.TraceStore | str, runs: int, key: str) -> list[ar.RunResult]:
    router = ar.Router(
        _registry(),
        agent=Static("worker"),
        store=store,
        client=ScriptedModelClient(default=REPLY, latency_s=0.002),
        budget=Budget(usd=LIMIT_USD, key=key),
    )
    return list(await asyncio.gather(*(router.run(f"task {i}") for i in range(runs))))


def _worker_main(url: str, runs: int, key: str) -> None:
    store = SqlTraceStore(url)
    try:
        results = asyncio.run(_many_runs(store, runs, key))
    finally:
        store.close()
    print(sum(r.status == "budget_exhausted" for r in results))


def _check_key(store: ar.TraceStore, key: str) -> None:
    status = store.budget_status(key)
    assert to_nano(status.spent_usd) <= to_nano(LIMIT_USD), status
    assert status.open_reservations == 0, "every reservation was settled or released"
    charged = sum(s.cost_usd for s in store.list_runs(limit=10_000))
    assert charged == pytest.approx(status.spent_usd, abs=1e-9), "no spend outside a trace"
    # The budget really bound: most of it was spent, and calls were refused.
    assert status.spent_usd > LIMIT_USD * 0.8


def test_concurrent_runs_in_one_process_share_a_key() -> None:
    """40 concurrent runs on one in-memory key never pass its limit; some end exhausted."""
    store = InMemoryTraceStore()
    results = asyncio.run(_many_runs(store, 40, "tenant-1"))
    assert "budget_exhausted" in {r.status for r in results}
    _check_key(store, "tenant-1")


def _spawn(url: str, runs: int, key: str) -> subprocess.Popen[str]:
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "import test_shared_budget as t; t._worker_main(sys.argv[2], int(sys.argv[3]), sys.argv[4])"
    )
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    return subprocess.Popen(
        [sys.executable, "-c", code, str(Path(__file__).parent), url, str(runs), key],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _pg_schema() -> Iterator[str]:
    """A PostgreSQL URL on a fresh schema, dropped afterwards (as in tests/stores)."""
    import psycopg

    libpq = PG_URL.replace("postgresql+psycopg://", "postgresql://", 1)
    try:
        with psycopg.connect(libpq, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError:
        if os.environ.get("AGENTROUTE_SKIP_PG") == "1":
            return
        raise
    schema = f"agentroute_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(libpq, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{separator}options={quote(f'-csearch_path={schema}')}"
    with psycopg.connect(libpq, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


PROCESSES = 2
RUNS_PER_PROCESS = 16


class _Proof:
    """Worker processes charging one key.

    Both backends' workers start at once: interpreter startup is the slow part.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.key = f"tenant-{uuid.uuid4().hex[:6]}"
        SqlTraceStore(url).close()  # create the schema once, before the workers race
        self.workers = [_spawn(url, RUNS_PER_PROCESS, self.key) for _ in range(PROCESSES)]

    def check(self) -> None:
        exhausted = 0
        for w in self.workers:
            out, err = w.communicate(timeout=180)
            assert w.returncode == 0, err[-2000:]
            exhausted += int(out.strip().splitlines()[-1])
        assert exhausted > 0, "the limit must have bound"
        store = SqlTraceStore(self.url)
        try:
            _check_key(store, self.key)
            assert len(store.run_ids()) == PROCESSES * RUNS_PER_PROCESS
        finally:
            store.close()


@pytest.fixture(scope="module")
def proofs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, _Proof]]:
    """SQLite and (when reachable) PostgreSQL workers, all started together."""
    started = {"sqlite": _Proof(f"sqlite:///{tmp_path_factory.mktemp('b') / 'budget.db'}")}
    schema_gen = _pg_schema()
    pg = next(schema_gen, None)
    if pg is not None:
        started["postgres"] = _Proof(pg)
    yield started
    next(schema_gen, None)


@pytest.mark.slow
def test_processes_share_a_key_in_sqlite(proofs: dict[str, _Proof]) -> None:
    """2 processes × 16 concurrent runs × 3 calls on one SQLite key: never over the limit."""
    proofs["sqlite"].check()


@pytest.mark.slow
@pytest.mark.postgres
def test_processes_share_a_key_in_postgres(proofs: dict[str, _Proof]) -> None:
    """2 processes × 16 concurrent runs × 3 calls on one PostgreSQL key: never over the limit."""
    if "postgres" not in proofs:
        pytest.skip("PostgreSQL unreachable and AGENTROUTE_SKIP_PG=1")
    proofs["postgres"].check()


def test_strong_call_limit_downgrades_then_exhausts() -> None:
    """`strong_calls=2`: the switch downgrades later steps to cheap, recorded in the evidence."""
    from agentroute.routing._budget_switch import BudgetSwitch

    reg = ar.Registry()
    reg.model("cheap", "m/cheap", tier="cheap", input_price_per_mtok=0.1, output_price_per_mtok=0.4)
    reg.model("strong", "m/strong", tier="strong", input_price_per_mtok=2, output_price_per_mtok=8)

    @reg.agent()
    async def solver(ctx: ar.AgentContext, task: str) -> ar.AgentResult:
        """Works over several steps."""
        out = await ctx.complete(task)
        return ar.AgentResult(output=f"{out} {ctx.step}", final=ctx.step >= 3)

    store = InMemoryTraceStore()
    router = ar.Router(
        reg,
        agent=Static("solver"),
        model=BudgetSwitch.always("strong"),
        store=store,
        client=ScriptedModelClient(default="ok"),
        limits=LimitsSpec(max_steps=4),
    )
    result = router.run_sync("solve it", budget=Budget(strong_calls=2))
    assert result.status == "completed"
    trace = router.trace(result.run_id)
    models = [c.model for c in trace.model_calls]
    assert models == ["strong", "strong", "cheap", "cheap"]
    decisions = [d for d in trace.decisions if d.slot == "model"]
    assert [d.evidence["downgraded"] for d in decisions] == [False, False, True, True]
    assert decisions[2].evidence["budget_before"]["strong_remaining"] == 0
    assert decisions[2].evidence["tier_wanted"] == "strong"


def _strong_first_registry() -> ar.Registry:
    """Two tiers and an agent that spends a strong call by name before its routed call."""
    reg = ar.Registry()
    reg.model("cheap", "m/cheap", tier="cheap", input_price_per_mtok=0.1, output_price_per_mtok=0.4)
    reg.model("strong", "m/strong", tier="strong", input_price_per_mtok=2, output_price_per_mtok=8)

    @reg.agent()
    async def solver(ctx: ar.AgentContext, task: str) -> str:
        """Asks the strong model by name first, then the routed model."""
        first = await ctx.complete(task, model="strong")
        return first + " / " + await ctx.complete(task)

    return reg


def test_a_strong_call_refused_after_routing_is_rerouted_and_downgraded() -> None:
    """The budget moved between the model decision and the call: the step downgrades.

    The model slot picks strong while one strong call is left; the agent then spends it on an
    explicit call, so the routed call's reservation is refused. The slot is routed again on the
    budget as it is now, records a downgrade to cheap, and the run completes instead of ending
    `budget_exhausted`.
    """
    from agentroute.routing._budget_switch import BudgetSwitch

    reg = _strong_first_registry()
    router = ar.Router(
        reg,
        agent=Static("solver"),
        model=BudgetSwitch.always("strong"),
        store=InMemoryTraceStore(),
        client=ScriptedModelClient(default="ok"),
    )
    result = router.run_sync("solve it", budget=Budget(strong_calls=1))
    assert result.status == "completed", result.reason
    trace = router.trace(result.run_id)
    assert [c.model for c in trace.model_calls] == ["strong", "cheap"]
    decisions = [d for d in trace.decisions if d.slot == "model"]
    assert [d.chosen for d in decisions] == [["strong"], ["cheap"]]
    assert [d.evidence["downgraded"] for d in decisions] == [False, True]
    assert decisions[1].evidence["budget_before"]["strong_remaining"] == 0
    assert [o.model for o in trace.outputs] == ["cheap"]  # the model in use at the end
    # The run's own budget decided the downgrade, so an exact replay takes the same path.
    report = ar.replay_sync(result.run_id, router)
    assert report.mode == "exact"
    assert report.identical, report.divergences
    assert report.model_calls_served == 2
    model_lines = [(d.repeat, d.recorded, d.status) for d in report.diffs if d.slot == "model"]
    assert model_lines == [(0, ["strong"], "same"), (1, ["cheap"], "same")]


def test_a_refused_call_whose_reroute_picks_the_same_model_ends_the_run() -> None:
    """A model strategy that keeps choosing the refused model cannot loop: the run ends."""
    reg = _strong_first_registry()
    router = ar.Router(
        reg,
        agent=Static("solver"),
        model=Static("strong"),
        store=InMemoryTraceStore(),
        client=ScriptedModelClient(default="ok"),
    )
    result = router.run_sync("solve it", budget=Budget(strong_calls=1))
    assert result.status == "budget_exhausted"
    trace = router.trace(result.run_id)
    assert [c.model for c in trace.model_calls] == ["strong"]
    assert [d.chosen for d in trace.decisions if d.slot == "model"] == [["strong"], ["strong"]]


def test_nothing_affordable_ends_the_run_budget_exhausted() -> None:
    """A budget below the cheapest call's estimate: the run ends `budget_exhausted`."""
    from agentroute.routing._budget_switch import BudgetSwitch

    reg = _registry()
    reg.model("cheap", "m/cheap", tier="cheap", input_price_per_mtok=1, output_price_per_mtok=1)
    router = ar.Router(
        reg,
        agent=Static("worker"),
        model=BudgetSwitch.always("strong"),
        store=InMemoryTraceStore(),
        client=ScriptedModelClient(default="ok"),
    )
    result = router.run_sync("x", budget=Budget(usd=1e-7))
    assert result.status == "budget_exhausted"
    decision = next(d for d in router.trace(result.run_id).decisions if d.slot == "model")
    assert decision.evidence["exhausted"] is True


def test_expired_reservations_stop_counting() -> None:
    """A reservation never settled (its process died) frees the budget after its TTL."""
    store = InMemoryTraceStore()
    ledger = open_ledger(Budget(usd=1.0, key="k", reservation_ttl_s=0.05), store)
    assert isinstance(ledger, SharedBudgetLedger)
    ledger.reserve(0.9)
    with pytest.raises(BudgetExceeded):
        ledger.reserve(0.5)
    time.sleep(0.08)
    ledger.reserve(0.5)
    assert store.budget_status("k").open_reservations == 1


def test_zero_or_negative_budget_is_refused() -> None:
    """`Budget(usd=0)` and negative budgets fail validation with a clear message."""
    for bad in (0, -1.0, float("inf")):
        with pytest.raises(ValueError, match="usd"):
            Budget(usd=bad)


def test_keyed_budget_needs_a_store_that_keeps_ledgers() -> None:
    """A shared key without a ledger-keeping store is a configuration error, not a free pass."""
    with pytest.raises(ConfigurationError, match="keeps no budget ledgers"):
        open_ledger(Budget(usd=1.0, key="k"), object())


if __name__ == "__main__":
    _worker_main(sys.argv[1], int(sys.argv[2]), sys.argv[3])


def test_strong_calls_of_a_shared_key_downgrade_later_runs() -> None:
    """`strong_calls=1` on a key: one strong call, then every later call is downgraded.

    The first run's model decision chose strong for its step; its second call is refused by the
    key, so the slot is routed again and downgrades the rest of the step instead of ending the
    run. The next run is downgraded at its first decision.
    """
    from agentroute.routing._budget_switch import BudgetSwitch

    reg = _registry()
    reg.model("cheap", "m/cheap", tier="cheap", input_price_per_mtok=0.1, output_price_per_mtok=1)
    store = InMemoryTraceStore()
    router = ar.Router(
        reg,
        agent=Static("worker"),
        model=BudgetSwitch.always("strong"),
        store=store,
        client=ScriptedModelClient(default="ok"),
        budget=Budget(usd=1.0, strong_calls=1, key="team"),
    )
    first, second = router.run_sync("a"), router.run_sync("b")
    assert first.status == "completed"
    assert [c.model for c in router.trace(first.run_id).model_calls] == ["strong", "cheap", "cheap"]
    later = next(d for d in router.trace(second.run_id).decisions if d.slot == "model")
    assert later.evidence["downgraded"] is True
    assert later.evidence["budget_before"]["key"] == "team"
    assert store.budget_status("team").strong_used == 1
