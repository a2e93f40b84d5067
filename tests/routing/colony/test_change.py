"""The ability change test: silent on stationary agents, resets a degraded agent's evidence."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from agentroute.errors import ConfigurationError
from agentroute.routing.colony import (
    START,
    PheromoneState,
    PheromoneUpdate,
    Trajectory,
    apply_updates,
)

from .conftest import build_registry, make_colony

EDGE = (START, "a")
LEARN: dict[str, Any] = {
    "rho": 0.05,
    "q": 1.0,
    "epsilon": 1.0,
    "tau_min": 0.01,
    "tau_max": 100.0,
    "ability_rho": 0.0125,
    "change_rho": 0.05,
}


def _learn(
    gates: list[float], mixture: dict[str, float], change_z: float | None
) -> list[PheromoneState]:
    """Apply one judged run of agent `a` per gate; the state after each run."""
    state = PheromoneState.fresh(["t", "u"], [EDGE], ["a"], 1.0)
    states = []
    for i, gate in enumerate(gates):
        up = PheromoneUpdate(str(i), (EDGE,), mixture, gate, 1.0)
        state = apply_updates(state, [up], change_z=change_z, **LEARN)
        states.append(state)
    return states


def _mean(state: PheromoneState) -> float:
    return float(state.ability_sum[0, 0] / state.ability_n[0, 0])


@pytest.mark.parametrize("weight", [1.0, 0.7])
@pytest.mark.parametrize("rate", [0.5, 0.7, 0.9])
def test_a_stationary_agent_never_triggers_the_change_test(rate: float, weight: float) -> None:
    """3,000 judged runs at a fixed accepted rate never trigger the change test.

    No change is called, and the ability evidence is exactly what it is with the test off, with
    one-hot and mixed task weights.
    """
    gates = [float(g) for g in np.random.default_rng(7).random(3000) < rate]
    mixture = {"t": weight, "u": 1.0 - weight}
    on = _learn(gates, mixture, 3.0)[-1]
    off = _learn(gates, mixture, None)[-1]
    assert "ability_changes" not in on.meta
    assert on.ability_n == pytest.approx(off.ability_n)
    assert on.ability_sum == pytest.approx(off.ability_sum)


def test_a_sharp_drop_resets_the_evidence_to_the_recent_window() -> None:
    """A sharp drop resets the agent's evidence to the recent window.

    After 300 accepted runs the agent fails every run: the test calls a change within a few
    runs, the evidence becomes the recent window, and the estimate falls below 0.5 at least
    three times sooner than evaporation alone takes it there.
    """
    gates = [1.0] * 300 + [0.0] * 100
    on = _learn(gates, {"t": 1.0}, 3.0)
    off = _learn(gates, {"t": 1.0}, None)
    called = next(i for i, s in enumerate(on) if s.meta.get("ability_changes"))
    assert 300 < called <= 306
    assert on[called].ability_n[0, 0] == on[called].ability_n_recent[0, 0]
    assert on[called].ability_sum[0, 0] == on[called].ability_sum_recent[0, 0]
    below_on = next(i for i, s in enumerate(on) if _mean(s) < 0.5) - 300
    below_off = next(i for i, s in enumerate(off) if _mean(s) < 0.5) - 300
    assert below_on <= 15
    assert below_off >= 3 * below_on


def test_the_colony_passes_its_change_test_to_learning() -> None:
    """`change_z` reaches the learner and is recorded in the colony's parameters.

    The same judged runs (an agent accepted 120 times, then rejected) trigger a reset with the
    default and none with `change_z=None`.
    """
    agents = ["plan_a", "plan_b", "solve_a", "solve_b"]
    runs = [(1.0 if i < 120 else 0.0) for i in range(160)]
    states = {}
    for change_z in (3.0, None):
        colony = make_colony(change_z=change_z, batch_size=8)
        colony.validate(build_registry(), agents)
        for start in range(0, len(runs), 8):
            batch = [
                (Trajectory(f"r{i}", "compute", ("plan_a", "solve_a"), {"math": 1.0},
                            "completed", "x", 0.01), runs[i])
                for i in range(start, start + 8)
            ]  # fmt: skip
            colony.commit(colony.updates_for(batch))
        states[change_z] = colony.state
        assert colony.params()["change_z"] == change_z
        assert colony.params()["change_rho"] == colony.rho
        colony.close()
    assert states[3.0].meta["ability_changes"] >= 1
    assert "ability_changes" not in states[None].meta
    math, plan_a = states[3.0].tasks.index("math"), states[3.0].agents.index("plan_a")
    assert states[3.0].ability_n[math, plan_a] < states[None].ability_n[math, plan_a]


def test_the_recent_window_is_stored_and_older_states_load_without_one() -> None:
    """The recent window is stored, reconciled, and absent from older states.

    It survives `to_value`/`from_value` and reconciliation; a state stored before it existed
    loads with an empty window (no change can be called until it fills).
    """
    state = PheromoneState.fresh(["math"], [(START, "plan_a")], ["plan_a"], 10.0)
    state.ability_n_recent[0, 0], state.ability_sum_recent[0, 0] = 12.0, 9.0
    back = PheromoneState.from_value(state.to_value(), 3)
    assert back.ability_n_recent.tolist() == [[12.0]]
    assert back.ability_sum_recent.tolist() == [[9.0]]
    value = state.to_value()
    del value["ability_n_recent"], value["ability_sum_recent"]
    old = PheromoneState.from_value(value, 3)
    assert old.ability_n_recent.tolist() == old.ability_sum_recent.tolist() == [[0.0]]
    fitted, changes = back.reconcile(
        ["math"], [(START, "plan_a"), (START, "plan_b")], ["plan_a", "plan_b"], 10.0
    )
    assert changes
    assert fitted.ability_n_recent.tolist() == [[12.0, 0.0]]
    assert fitted.ability_sum_recent.tolist() == [[9.0, 0.0]]


@pytest.mark.parametrize(
    ("name", "value"), [("change_z", 0), ("change_z", -1.0), ("change_rho", 0), ("change_rho", 2)]
)
def test_bad_change_parameters_are_configuration_errors(name: str, value: float) -> None:
    """A non-positive z or a window evaporation outside (0, 1] is refused, naming the field."""
    with pytest.raises(ConfigurationError, match=name):
        make_colony(**{name: value})
