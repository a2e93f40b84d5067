"""`AntColony.warm_up`: AMRO-S's offline initialisation of the tables from labelled runs."""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agentroute.errors import ConfigurationError
from agentroute.registry import TaskSpec
from agentroute.routing import Complete
from agentroute.routing.colony import START, AntColony, Mixture, Trajectory, WarmUpRun
from agentroute.stores import InMemoryTraceStore, SqlTraceStore, StateRecord

from .conftest import build_registry, make_colony

AGENTS = ["plan_a", "plan_b", "solve_a", "solve_b"]
MATH = "compute the sum of two numbers"
CODE = "write a python function"


def _colony(**params: object) -> AntColony:
    colony = make_colony(**params)
    colony.validate(build_registry(), AGENTS)
    return colony


def _runs() -> list[WarmUpRun]:
    """Math is solved by plan_a→solve_b, code by plan_b→solve_a; the other paths fail."""
    out: list[WarmUpRun] = []
    for text, good in ((MATH, ("plan_a", "solve_b")), (CODE, ("plan_b", "solve_a"))):
        for path in (("plan_a", "solve_a"), ("plan_a", "solve_b"), ("plan_b", "solve_a")):
            out.extend(
                WarmUpRun(task=text, path=path, score=1.0 if path == good else 0.0, cost_usd=0.01)
                for _ in range(5)
            )
    return out


async def test_warm_up_teaches_the_labelled_paths_in_one_version() -> None:
    """After warm-up, greedy decisions follow the labelled winners per task, in version 1."""
    colony = _colony()
    state = await colony.warm_up(_runs(), source="offline eval")
    assert state.version == 1 == colony.state.version
    math_mix = Mixture({"math": 1.0, "code": 0.0})
    code_mix = Mixture({"math": 0.0, "code": 1.0})
    assert colony.decide(START, ["plan_a", "plan_b"], math_mix, greedy=True).pick == "plan_a"
    assert colony.decide("plan_a", ["solve_a", "solve_b"], math_mix, greedy=True).pick == (
        "solve_b"
    )
    assert colony.decide(START, ["plan_a", "plan_b"], code_mix, greedy=True).pick == "plan_b"
    assert state.meta["warm_ups"] == [
        {"runs": 30, "accepted": 10, "texts": 2, "intent_failures": 0, "source": "offline eval"}
    ]
    assert state.meta["learned"] == 30
    assert colony.stats()["warmed_up"] == 30
    assert colony.book is not None
    notes = [v["note"] for v in colony.book.versions()]
    assert notes == ["warm-up from offline eval: 30 labelled run(s), 10 accepted"]
    colony.close()


async def test_warm_up_learns_exactly_what_the_online_rule_would() -> None:
    """The warm-up's tables equal committing the same judged trajectories one batch online."""
    warm, online = _colony(), _colony()
    runs = _runs()
    state = await warm.warm_up(runs)
    mixes = {t: await online.infer(t) for t in (MATH, CODE)}
    pairs = []
    for i, r in enumerate(runs):
        mix = dict(mixes[r.task].weights)
        traj = Trajectory(f"r{i}", r.task, r.path, mix, "completed", None, r.cost_usd)
        pairs.append((traj, r.score))
    expected = online.commit(online.updates_for(pairs))
    np.testing.assert_allclose(state.tau, expected.tau)
    np.testing.assert_allclose(state.ability_n, expected.ability_n)
    np.testing.assert_allclose(state.ability_sum, expected.ability_sum)
    warm.close()
    online.close()


class _CountingIntent:
    """An intent model that counts its calls and can be told to fail."""

    name = "counting"

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[str] = []
        self.fail = fail

    async def infer(
        self, text: str, tasks: Sequence[TaskSpec], complete: Complete | None = None
    ) -> Mixture:
        """Math for texts with 'sum', else code; raises when told to."""
        self.calls.append(text)
        if self.fail:
            msg = "intent service down"
            raise RuntimeError(msg)
        return Mixture({"math": 1.0} if "sum" in text else {"code": 1.0}, source=self.name)


async def test_each_distinct_text_is_inferred_once_and_given_mixtures_are_not() -> None:
    """30 runs over 2 texts cost 2 intent calls; a run with its own mixture costs none."""
    intent = _CountingIntent()
    colony = _colony(intent=intent)
    given = WarmUpRun(task="other", path=("plan_b", "solve_b"), score=1.0, mixture={"code": 2.0})
    state = await colony.warm_up([*_runs(), given])
    assert sorted(intent.calls) == sorted([MATH, CODE])
    # The given mixture was checked (rescaled to sum to one) and used: plan_b→solve_b gained
    # code pheromone only.
    col = state.edges.index(("plan_b", "solve_b"))
    assert state.tau[state.tasks.index("code"), col] > state.tau[state.tasks.index("math"), col]
    colony.close()


async def test_an_intent_failure_gives_a_uniform_mixture_and_is_recorded() -> None:
    """A failing intent model does not stop the warm-up: uniform mixture, error recorded."""
    colony = _colony(intent=_CountingIntent(fail=True))
    state = await colony.warm_up(_runs()[:3])
    assert state.meta["warm_ups"][0]["intent_failures"] == 1
    assert any("intent service down" in e.error for e in colony.errors)
    colony.close()


@pytest.mark.parametrize(
    ("run", "needle"),
    [
        ("not a run", "is a str; pass WarmUpRun objects"),
        (WarmUpRun(task=MATH, path=(), score=1.0), "non-empty sequence of agent names"),
        (WarmUpRun(task=MATH, path=("plan_c",), score=1.0), "did you mean"),
        (WarmUpRun(task=MATH, path=("solve_a",), score=1.0), "may go to ['plan_a', 'plan_b']"),
        (WarmUpRun(task=MATH, path=("plan_a", "plan_b"), score=1.0), "plan_a->plan_b"),
        (WarmUpRun(task=MATH, path=("plan_a",), score=1.5), "score must be in [0, 1]"),
        (WarmUpRun(task=MATH, path=("plan_a",), score=math.nan), "score must be in [0, 1]"),
        (WarmUpRun(task=MATH, path=("plan_a",), score="0.5"), "got '0.5'"),  # type: ignore[arg-type]
        (WarmUpRun(task=MATH, path=("plan_a",), score=1, cost_usd=-1), "cost_usd must be"),
        (
            WarmUpRun(task=MATH, path=("plan_a",), score=1, latency_s=math.inf),
            "latency_s must be",
        ),
        (WarmUpRun(task=3, path=("plan_a",), score=1.0), "task must be the request text"),  # type: ignore[arg-type]
        (
            WarmUpRun(task=MATH, path=("plan_a",), score=1, mixture=[("math", 1.0)]),  # type: ignore[arg-type]
            "mixture must be a mapping",
        ),
        (
            WarmUpRun(task=MATH, path=("plan_a",), score=1, mixture={"maths": 1.0}),
            "unknown task 'maths' — did you mean 'math'",
        ),
        (
            WarmUpRun(task=MATH, path=("plan_a",), score=1, mixture={"math": -1.0}),
            "is not usable",
        ),
        (
            WarmUpRun(task=MATH, path=("plan_a",), score=1, mixture={"math": 0.0}),
            "no usable weight",
        ),
    ],
)
async def test_a_bad_run_is_named_and_nothing_is_written(run: object, needle: str) -> None:
    """One bad run among good ones: a ConfigurationError naming it, and nothing written.

    The error comes before the intent model is asked about any run (it would seed clusters).
    """
    intent = _CountingIntent()
    colony = _colony(intent=intent)
    with pytest.raises(ConfigurationError) as err:
        await colony.warm_up([*_runs()[:2], run])  # type: ignore[list-item]
    assert "run 2" in str(err.value)
    assert needle in str(err.value)
    assert intent.calls == []
    assert colony.state.version == 0
    assert colony.book is not None
    assert colony.book.versions() == []
    colony.close()


async def test_no_runs_is_an_error() -> None:
    """An empty warm-up is refused (it would write an empty version)."""
    colony = _colony()
    with pytest.raises(ConfigurationError, match="at least one WarmUpRun"):
        await colony.warm_up([])
    colony.close()


async def test_warm_up_before_validate_is_an_error() -> None:
    """Warm-up needs the graph: before `validate()` it says so."""
    colony = make_colony()
    with pytest.raises(ConfigurationError, match="not validated"):
        await colony.warm_up(_runs())
    colony.close()


async def test_warm_tables_persist_for_the_next_process(tmp_path: Path) -> None:
    """Warm-up goes to the SQL store: a colony opened later on the same key serves it."""
    url = f"sqlite:///{tmp_path / 'colony.db'}"
    store = SqlTraceStore(url)
    first = _colony(store=store, key="desk")
    await first.warm_up(_runs())
    first.close()
    store.close()
    again = SqlTraceStore(url)
    second = _colony(store=again, key="desk")
    assert second.state.version == 1
    assert second.state.meta["warm_ups"][0]["runs"] == 30
    mix = Mixture({"math": 1.0, "code": 0.0})
    assert second.decide(START, ["plan_a", "plan_b"], mix, greedy=True).pick == "plan_a"
    second.close()
    again.close()


class _ThreadRecordingStore(InMemoryTraceStore):
    """An in-memory store that notes which thread writes learned state."""

    def __init__(self) -> None:
        super().__init__()
        self.writer_threads: list[int] = []

    def put_state(
        self, key: str, value: dict[str, Any], *, expected_version: int | None, note: str = ""
    ) -> StateRecord:
        """Record the calling thread, then store as usual."""
        self.writer_threads.append(threading.get_ident())
        return super().put_state(key, value, expected_version=expected_version, note=note)


async def test_the_store_write_runs_off_the_event_loop() -> None:
    """The blocking store write (and its back-off after lost races) never runs on the loop."""
    store = _ThreadRecordingStore()
    colony = _colony(store=store)
    store.writer_threads.clear()
    await colony.warm_up(_runs())
    assert store.writer_threads
    assert threading.get_ident() not in store.writer_threads
    colony.close()
