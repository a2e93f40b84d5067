"""AntColony end to end: decisions, evidence, asynchronous quality-gated learning, versions."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import agentroute as ar
from agentroute.routing import Outcome
from agentroute.routing.colony import START, AntColony, Mixture, PheromoneState, Trajectory
from agentroute.routing.colony._learner import JUDGE_THREADS
from agentroute.stores import InMemoryTraceStore, SqlTraceStore
from agentroute.testing import ScriptedModelClient

from .conftest import build_registry, make_colony


def _router(colony: AntColony, store: object = "memory://") -> ar.Router:
    return ar.Router(build_registry(), agent=colony, store=store, client=ScriptedModelClient())  # type: ignore[arg-type]


async def test_end_to_end_router_walks_a_two_stage_path() -> None:
    """Through `Router`: stage 0 then stage 1, each decision recording the full evidence."""
    colony = make_colony()
    router = _router(colony)
    result = await router.run("please compute the sum of two numbers")
    assert result.status == "completed"
    assert len(result.agents) == 2
    assert result.agents[0][0].startswith("plan_")
    assert result.agents[1][0].startswith("solve_")
    decisions = [d for d in router.trace(result.run_id).decisions if d.slot == "agent"]
    first = decisions[0]
    ev = first.evidence
    assert set(ev) >= {"mixture", "fused_tau", "eta", "probs", "pick", "pheromone_version"}
    assert ev["mixture"]["weights"]["math"] > 0.5
    assert sum(ev["probs"].values()) == pytest.approx(1.0, abs=1e-4)
    assert ev["from"] == START
    assert decisions[1].evidence["from"] == result.agents[0][0]
    colony.close()


async def test_feedback_reinforces_the_rewarded_path() -> None:
    """Feedback scores gate deposits: after rewarding plan_a→solve_b on math, greedy picks it."""
    colony = make_colony(rho=0.3, batch_size=8)
    colony.validate(build_registry(), ["plan_a", "plan_b", "solve_a", "solve_b"])
    for i in range(40):
        good = i % 2 == 0
        path = (("plan_a",), ("solve_b",)) if good else (("plan_b",), ("solve_a",))
        await colony.learn(
            Outcome(
                run_id=f"r{i}",
                task="compute the sum",
                status="completed",
                answer="x",
                cost_usd=0.01,
                steps=path,
                score=1.0 if good else 0.0,
            )
        )
    assert colony.drain(10)
    mix = Mixture({"math": 1.0, "code": 0.0})
    first = colony.decide(START, ["plan_a", "plan_b"], mix, greedy=True)
    second = colony.decide("plan_a", ["solve_a", "solve_b"], mix, greedy=True)
    assert (first.pick, second.pick) == ("plan_a", "solve_b")
    assert first.probs[0] > 0.8
    assert colony.state.version >= 1
    assert colony.stats()["accepted"] == 20
    colony.close()


async def test_learn_returns_fast_and_a_burst_stays_bounded() -> None:
    """10,000 outcomes against a slow judge: `learn` never waits and the buffer stays ≤ its size."""
    release = threading.Event()

    def slow_judge(_: object) -> bool:
        release.wait(5)
        return True

    colony = make_colony(judge=slow_judge, buffer_size=16, batch_size=4)
    colony.validate(build_registry(), ["plan_a", "plan_b", "solve_a", "solve_b"])
    start = time.perf_counter()
    peak = 0
    for i in range(10_000):
        await colony.learn(
            Outcome(
                run_id=f"r{i}",
                task="compute",
                status="completed",
                answer="x",
                cost_usd=0.001,
                steps=(("plan_a",), ("solve_a",)),
            )
        )
        peak = max(peak, colony.worker.pending)
    elapsed = time.perf_counter() - start
    release.set()
    assert peak <= 16
    assert colony.worker.dropped >= 10_000 - 16 - 8
    assert elapsed < 5.0
    assert colony.drain(20)
    colony.close()


async def test_a_raising_or_slow_judge_is_recorded_not_raised() -> None:
    """A judge that raises, or outlives its timeout, skips the run and records the error."""
    calls = {"n": 0}

    async def flaky(_: object) -> bool:
        calls["n"] += 1
        if calls["n"] == 1:
            msg = "judge exploded"
            raise RuntimeError(msg)
        await asyncio.sleep(2)
        return True

    colony = make_colony(judge=flaky, judge_timeout_s=0.1, batch_size=1)
    router = _router(colony)
    for _ in range(2):
        result = await router.run("write a python function")
        assert result.status == "completed"
    assert colony.drain(10)
    stages = [e.stage for e in colony.errors]
    texts = " ".join(e.error for e in colony.errors)
    assert stages == ["judge", "judge"]
    assert "judge exploded" in texts
    assert "timed out" in texts
    assert colony.state.version == 0
    colony.close()


async def test_versions_can_be_listed_diffed_and_rolled_back() -> None:
    """Every commit is a version; a diff shows the changed edges; rollback restores a value."""
    colony = make_colony(batch_size=1)
    colony.validate(build_registry(), ["plan_a", "plan_b", "solve_a", "solve_b"])
    mix = {"math": 1.0, "code": 0.0}
    for i, score in enumerate((1.0, 0.0)):
        from agentroute.routing.colony import Trajectory

        await colony.learn_batch(
            [
                Trajectory(
                    f"r{i}", "t", ("plan_a", "solve_a"), mix, "completed", "x", 0.01, score=score
                )
            ]
        )
    book = colony.book
    assert book is not None
    versions = book.versions()
    assert [v["version"] for v in versions] == [1, 2]
    diff = book.diff(1, 2)
    assert set(diff.changes["math"]) == {"__start__->plan_a", "plan_a->solve_a"}
    assert "code" not in diff.changes
    restored = book.rollback(1)
    assert restored.version == 3
    assert restored.table("math") == book.load(1).table("math")  # type: ignore[union-attr]
    assert book.versions()[-1]["note"] == "rollback to 1"
    colony.close()


def test_tables_from_an_older_registry_are_reconciled() -> None:
    """Stored tables for other agents keep surviving edges, add new ones at τ0, and say so."""
    store = InMemoryTraceStore()
    old = PheromoneState.fresh(
        ["math", "code"], [(START, "plan_a"), (START, "gone")], ["plan_a", "gone"], 1.0
    )
    old.tau[0, 0] = 19.0
    old.prior_left[0, 0] = 0.0  # the edge was learned: nothing of the initial value is left
    store.put_state("ant-colony/test", old.to_value(), expected_version=None)
    colony = make_colony(store=store, key="ant-colony/test")
    colony.validate(build_registry(), ["plan_a", "plan_b", "solve_a", "solve_b"])
    state = colony.state
    assert state.table("math")["__start__->plan_a"] == pytest.approx(19.0)
    assert state.table("math")["__start__->plan_b"] == pytest.approx(colony.tau0)
    assert "__start__->gone" not in state.table("math")
    assert any("removed agent(s) ['gone']" in r for r in colony.reconciled)
    mix = Mixture({"math": 1.0})
    assert colony.decide(START, ["plan_a", "plan_b"], mix, greedy=True).pick == "plan_a"


def test_decisions_are_reproducible_from_the_seed() -> None:
    """Sampling uses the per-decision seed: the same seed gives the same pick."""
    colony = make_colony()
    colony.validate(build_registry(), ["plan_a", "plan_b", "solve_a", "solve_b"])
    mix = Mixture({"math": 0.5, "code": 0.5})
    picks = {colony.decide(START, ["plan_a", "plan_b"], mix, seed=s).pick for s in range(50)}
    assert picks == {"plan_a", "plan_b"}
    again = [colony.decide(START, ["plan_a", "plan_b"], mix, seed=7).pick for _ in range(5)]
    assert len(set(again)) == 1


def test_load_steers_away_from_a_busy_agent() -> None:
    """With equal pheromone, the agent with many branches in flight gets less probability.

    Greedy uses the posterior-mean ability (equal here), so only load differs; an unseeded
    ability draw could otherwise outweigh it now and then.
    """
    colony = make_colony(beta=3.0)
    colony.validate(build_registry(), ["plan_a", "plan_b", "solve_a", "solve_b"])
    mix = Mixture({"math": 1.0})
    choice = colony.decide(START, ["plan_a", "plan_b"], mix, load={"plan_a": 50}, greedy=True)
    assert choice.probs[1] > choice.probs[0]
    assert choice.eta_parts["load"][0] < 0.1


def test_a_lost_race_re_applies_the_update_on_the_newer_version() -> None:
    """When another writer commits between our read and write, our update is re-applied."""
    from agentroute.routing.colony import Trajectory

    store = InMemoryTraceStore()
    mine, other = (make_colony(store=store, key="k", batch_size=1) for _ in range(2))
    for colony in (mine, other):
        colony.validate(build_registry(), ["plan_a", "plan_b", "solve_a", "solve_b"])
    real_put = store.put_state
    raced = {"done": False}

    def racing_put(*args: object, **kwargs: object) -> object:
        if not raced["done"]:
            raced["done"] = True
            traj = Trajectory("other", "t", ("plan_b", "solve_b"), {"code": 1.0}, "ok", "x", 0.0)
            other.commit(other.updates_for([(traj, 1.0)]))
        return real_put(*args, **kwargs)  # type: ignore[arg-type]

    store.put_state = racing_put  # type: ignore[method-assign]
    traj = Trajectory("mine", "t", ("plan_a", "solve_a"), {"math": 1.0}, "ok", "x", 0.0)
    final = mine.commit(mine.updates_for([(traj, 1.0)]))
    assert mine.book is not None
    assert mine.book.conflicts == 1
    assert final.version == 2
    assert final.meta["learned"] == 2


def _learn(
    colony: AntColony, path: tuple[str, ...], mix: dict[str, float], ok: bool, n: int
) -> None:
    from agentroute.routing.colony import Trajectory

    for i in range(n):
        traj = Trajectory(f"r{i}", "t", path, mix, "completed", "x", 0.01)
        colony.commit(colony.updates_for([(traj, 1.0 if ok else 0.0)]))


def test_a_task_without_evidence_backs_off_to_the_global_table() -> None:
    """Runs learned only on `math` steer `code` too: an unseen task starts from all-task τ.

    Without the back-off the `code` row would still be uniform (τ0 on both edges, prior
    ability on both agents) and the greedy pick a tie; with it, plan_a's success on math
    carries over until code has evidence of its own.
    """
    colony = make_colony(ability_draw=False)
    colony.validate(build_registry(), ["plan_a", "plan_b", "solve_a", "solve_b"])
    _learn(colony, ("plan_a", "solve_a"), {"math": 1.0}, True, 20)
    _learn(colony, ("plan_b", "solve_a"), {"math": 1.0}, False, 20)
    state = colony.state
    code = state.tasks.index("code")
    assert state.tau[code] == pytest.approx(colony.tau0)  # the raw code row is untouched
    choice = colony.decide(START, ["plan_a", "plan_b"], Mixture({"code": 1.0}), greedy=True)
    assert choice.pick == "plan_a"
    assert choice.tau[0] > colony.tau0 > choice.tau[1]
    assert choice.ability_mean is not None
    assert choice.ability_mean[0] > 0.5 > choice.ability_mean[1]
    # Code's own evidence takes over: plan_b succeeds on code, plan_a fails there.
    _learn(colony, ("plan_b", "solve_a"), {"code": 1.0}, True, 60)
    _learn(colony, ("plan_a", "solve_a"), {"code": 1.0}, False, 60)
    again = colony.decide(START, ["plan_a", "plan_b"], Mixture({"code": 1.0}), greedy=True)
    assert again.pick == "plan_b"
    assert colony.decide(START, ["plan_a", "plan_b"], Mixture({"math": 1.0}), greedy=True).pick == (
        "plan_a"
    )


def test_posterior_draws_explore_an_untried_agent_and_greedy_does_not() -> None:
    """With `q0=1` (always the arg-max), only the ability draw can pick an untried agent.

    plan_a succeeded 30 times in 50 (mean ≈ 0.6); plan_b was never tried (prior 0.5, worth 2
    runs). The posterior-mean colony never picks plan_b; the drawing colony sometimes does,
    and each decision is reproducible from its seed.
    """
    picks: dict[bool, list[str]] = {}
    for draw in (True, False):
        colony = make_colony(q0=1.0, ability_draw=draw, alpha=0.0)
        colony.validate(build_registry(), ["plan_a", "plan_b", "solve_a", "solve_b"])
        for _ in range(10):  # interleaved: a steady 60% agent, not a drift for the change test
            _learn(colony, ("plan_a", "solve_a"), {"math": 1.0}, True, 3)
            _learn(colony, ("plan_a", "solve_a"), {"math": 1.0}, False, 2)
        mix = Mixture({"math": 1.0})
        picks[draw] = [
            colony.decide(START, ["plan_a", "plan_b"], mix, seed=s).pick for s in range(200)
        ]
        again = [colony.decide(START, ["plan_a", "plan_b"], mix, seed=s).pick for s in range(200)]
        assert again == picks[draw]
    assert picks[False].count("plan_b") == 0
    assert 10 <= picks[True].count("plan_b") <= 120


def test_the_cost_scale_does_not_follow_the_colony_s_own_choices() -> None:
    """f_sys's cost term is relative to the dearest path seen, however rarely it is taken.

    (A running mean of chosen costs made a colony that favoured cheap paths see the dear
    ones as ever dearer.) After 200 cheap runs and 2 dear ones, the dear path costs about
    `cost_weight` and the cheap one a tenth of it, as after an even mix.
    """
    colony = make_colony(cost_weight=0.2, latency_weight=0.0)
    colony.validate(build_registry(), ["plan_a", "plan_b", "solve_a", "solve_b"])
    cheap, dear = ("plan_a", "solve_a"), ("plan_b", "solve_b")
    for _ in range(200):
        colony.path_cost(0.001, None, cheap)
    colony.path_cost(0.01, None, dear)
    assert colony.path_cost(0.01, None, dear) == pytest.approx(0.2)
    assert colony.path_cost(0.001, None, cheap) == pytest.approx(0.02)


def test_a_state_written_before_the_global_table_still_loads() -> None:
    """A format-1 value (no global table) loads: global τ = mean of the task rows, no back-off."""
    state = PheromoneState.fresh(["math", "code"], [(START, "plan_a")], ["plan_a"], 10.0)
    state.tau[:, 0] = [14.0, 6.0]
    state.ability_n[:, 0] = [3.0, 1.0]
    value = state.to_value()
    value["format"] = "agentroute.ant-colony/1"
    for name in ("tau_all", "prior_left", "ability_n_all", "ability_sum_all"):
        del value[name]
    old = PheromoneState.from_value(value, 4)
    assert old.tau_all == pytest.approx([10.0])
    assert old.prior_left.tolist() == [[0.0], [0.0]]
    assert old.ability_n_all == pytest.approx([4.0])
    assert old.backed_off(10.0).tolist() == old.tau.tolist()
    with pytest.raises(ValueError, match="not an ant-colony"):
        PheromoneState.from_value({**value, "format": "something/else"}, 1)


def test_backed_off_columns_match_the_full_table_and_indexes_follow_the_state() -> None:
    """A decision's column slice of the back-off equals the whole table's columns.

    And the cached edge/agent indexes are rebuilt for a state whose edges changed, so a stale
    cache can never point a decision at another edge's pheromone.
    """
    edges = [(START, "a"), (START, "b"), ("a", "c"), ("b", "c")]
    state = PheromoneState.fresh(["math", "code"], edges, ["a", "b", "c"], 10.0)
    state.tau[:] = [[11.0, 9.0, 12.0, 8.0], [7.0, 13.0, 10.5, 9.5]]
    state.prior_left[:] = [[0.5, 1.0, 0.25, 0.0], [1.0, 0.1, 0.6, 0.3]]
    state.tau_all[:] = [12.0, 8.0, 11.0, 10.0]
    full = state.backed_off(10.0)
    assert state.backed_off(10.0, [3, 1]).tolist() == full[:, [3, 1]].tolist()
    e_index, a_index = state.indexes()
    assert e_index[("b", "c")] == 3
    assert a_index["c"] == 2
    state.edges = tuple(reversed(state.edges))
    assert state.indexes()[0][("b", "c")] == 0


def _traj(run_id: str, task: str = "compute the sum", **fields: object) -> Trajectory:
    base: dict[str, object] = {
        "run_id": run_id,
        "task": task,
        "path": ("plan_a", "solve_b"),
        "mixture": {"math": 1.0, "code": 0.0},
        "status": "completed",
        "answer": "x",
        "cost_usd": 0.0,
    }
    return Trajectory(**{**base, **fields})  # type: ignore[arg-type]


async def test_a_non_number_verdict_skips_only_that_trajectory() -> None:
    """A non-number verdict is a judge error for that run alone; the batch is still learned.

    The judge answers None and "yes" for two runs, and a third run breaks later (an unusable
    cost): all three are recorded in `errors`, and the six good runs are committed.
    """

    def judge(traj: Trajectory) -> object:
        return {"none": None, "yes": "yes", "ok": True}[traj.run_id]

    colony = make_colony(judge=judge)
    colony.validate(build_registry(), ["plan_a", "plan_b", "solve_a", "solve_b"])
    batch = [
        *(_traj(f"fb{i}", score=1.0) for i in range(5)),
        _traj("none"),
        _traj("yes"),
        _traj("ok"),
        _traj("bad-cost", score=1.0, cost_usd=None),
    ]
    await colony.learn_batch(batch)
    assert colony.state.version == 1
    assert colony.state.meta["learned"] == 6
    errors = {e.run_id: (e.stage, e.error) for e in colony.errors}
    assert errors["none"] == ("judge", errors["none"][1])
    assert "judge returned None, not a bool or a number" in errors["none"][1]
    assert "judge returned 'yes'" in errors["yes"][1]
    assert errors["bad-cost"][0] == "learn"
    assert colony.counters["judge_errors"] == 2
    assert colony.counters["learn_errors"] == 1
    colony.close()


async def test_hung_sync_judges_cannot_starve_commits() -> None:
    """Hung sync judges use only their own threads, so commits never starve.

    Calls that hang past the timeout keep at most `JUDGE_THREADS` threads; once all are stuck,
    judging is skipped as "judge busy", and a feedback-scored run still commits although the
    loop's default executor has only two threads (hung judges used to fill it, and the commit
    then waited forever). Once the judge returns, judging resumes.
    """
    release = threading.Event()

    def hung(_: Trajectory) -> bool:
        release.wait(30)
        return True

    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=2))
    colony = make_colony(judge=hung, judge_timeout_s=0.05)
    colony.validate(build_registry(), ["plan_a", "plan_b", "solve_a", "solve_b"])
    try:
        for i in range(JUDGE_THREADS + 2):
            await asyncio.wait_for(colony.learn_batch([_traj(f"run{i}")]), 5)
        await asyncio.wait_for(colony.learn_batch([_traj("fb", score=1.0)]), 5)
        assert colony.state.version == 1
        texts = [e.error for e in colony.errors]
        assert sum("timed out" in t for t in texts) == JUDGE_THREADS
        busy = [t for t in texts if t.startswith("judge busy")]
        assert len(busy) == 2
        assert f"{JUDGE_THREADS} calls still running past judge_timeout_s" in busy[0]
    finally:
        release.set()
    for _ in range(500):  # the released judge threads return within milliseconds
        if not colony._judge_threads.running:
            break
        await asyncio.sleep(0.01)
    assert colony._judge_threads.running == 0
    await asyncio.wait_for(colony.learn_batch([_traj("later")]), 5)
    assert colony.state.version == 2
    colony.close()


async def test_a_serving_only_process_re_reads_tables_learned_elsewhere(tmp_path: Path) -> None:
    """A colony that only serves re-reads the tables another one learned, every `refresh_s`.

    Two colonies on one SQLite store: A learns, B only serves (no judge, no feedback, so its
    learning worker never starts). B's runs still pick up A's newer version.
    """
    store = SqlTraceStore(f"sqlite:///{tmp_path / 'colony.db'}")
    a = make_colony(store=store, key="ant-colony/shared", refresh_s=0.2)
    b = make_colony(store=store, key="ant-colony/shared", refresh_s=0.2)
    a.validate(build_registry(), ["plan_a", "plan_b", "solve_a", "solve_b"])
    router = _router(b, store=store)
    assert (await router.run("compute the sum")).status == "completed"
    await a.learn_batch([_traj(f"fb{i}", score=1.0) for i in range(3)])
    assert a.state.version == 1
    assert b.state.version == 0
    await asyncio.sleep(0.3)
    deadline = time.monotonic() + 5
    while b.state.version < 1 and time.monotonic() < deadline:
        assert (await router.run("compute the sum")).status == "completed"
        await asyncio.sleep(0.05)
    assert b.state.version == 1
    assert b.state.meta["learned"] == 3
    a.close()
    b.close()
    router.close()


async def test_a_changed_agent_list_warns_that_the_default_key_starts_empty() -> None:
    """After an agent is added, the default key starts empty, with a warning naming the old key.

    Passing the old key as `key=` keeps its tables and reconciles them with the new agent.
    """
    from structlog.testing import capture_logs

    store = InMemoryTraceStore()
    v1 = make_colony(store=store)
    v1.validate(build_registry(), ["plan_a", "plan_b", "solve_a", "solve_b"])
    await v1.learn_batch([_traj(f"fb{i}", score=1.0) for i in range(3)])
    reg = build_registry()

    async def solve_c(ctx: ar.AgentContext, task: str) -> str:
        return task

    reg.agent(name="solve_c", description="Stage 1 agent solve_c.", stage=1)(solve_c)
    agents = ["plan_a", "plan_b", "solve_a", "solve_b", "solve_c"]
    with capture_logs() as logs:
        make_colony(store=store).validate(reg, agents)
    warned = [e for e in logs if "new default key" in e["event"]]
    assert warned
    assert warned[0]["stored_keys"] == [v1.key_param]
    kept = make_colony(store=store, key=v1.key_param)
    kept.validate(reg, agents)
    assert kept.state.meta["learned"] == 3
    assert kept.reconciled
    v1.close()
