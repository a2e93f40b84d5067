"""`agentroute runs replay`: exact replays call no model; `--router` gives a counterfactual."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agentroute.models import LiteLLMClient
from agentroute.stores import open_store
from agentroute.testing import ScriptedModelClient
from tests.cli.conftest import DemoStore, Invoke, fan_out_run

GRAPHS = Path(__file__).resolve().parents[2] / "graphs"


@pytest.fixture
def no_model_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every model client used by the demo or LiteLLM fail the test when called."""

    async def forbidden(self: Any, request: Any) -> Any:
        msg = f"a model was called during a replay: {request.model.name!r}"
        raise AssertionError(msg)

    monkeypatch.setattr(ScriptedModelClient, "complete", forbidden)
    monkeypatch.setattr(LiteLLMClient, "complete", forbidden)


@pytest.mark.usefixtures("no_model_calls")
def test_exact_replay_of_a_demo_run_is_identical_without_model_calls(
    invoke: Invoke, demo_store: DemoStore
) -> None:
    """Replaying a demo run is exact and identical, and calls no model.

    The recorded router is rebuilt from the recorded app; both model outputs come from the trace.
    """
    run_id = fan_out_run(demo_store.url)
    result = invoke("runs", "replay", run_id[:8], "--db", demo_store.url)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"replay {run_id} with the recorded router: exact" in out
    assert "model calls served from the trace: 2" in out
    assert "identical" in out
    assert "divergence" not in out
    assert "changed" not in out


@pytest.mark.usefixtures("no_model_calls")
def test_exact_replay_json_with_an_explicit_app(invoke: Invoke, demo_store: DemoStore) -> None:
    """`--app module:function` provides the registry; `--json` reports 0 divergences."""
    run_id = fan_out_run(demo_store.url)
    result = invoke("runs", "replay", run_id, "--db", demo_store.url, "--json",
                    "--app", "agentroute._demo:build_registry")  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["mode"] == "exact"
    assert report["divergences"] == 0
    assert report["identical"] is True
    assert report["model_calls_served"] == 2
    assert report["unobserved"] == []


@pytest.mark.usefixtures("no_model_calls")
def test_counterfactual_replay_against_another_graph_shows_the_differences(
    invoke: Invoke, demo_store: DemoStore
) -> None:
    """`--router graphs/escalation-path.yaml` gives a counterfactual with differences.

    The recorded input is re-routed with another layout; some diff lines are not `same`.
    """
    run_id = fan_out_run(demo_store.url)
    graph = str(GRAPHS / "escalation-path.yaml")
    result = invoke("runs", "replay", run_id, "--db", demo_store.url, "--router", graph, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["mode"] == "counterfactual"
    assert any(d["status"] != "same" for d in report["diffs"])
    assert report["divergences"] >= 1

    result = invoke("runs", "replay", run_id, "--db", demo_store.url, "--router", graph)
    assert result.exit_code == 0, result.output
    assert "counterfactual" in result.stdout
    assert "divergence" in result.stdout
    assert any(s in result.stdout for s in ("changed", "only_recorded", "unobserved"))

    # The replay is kept in memory: the store still holds only the recorded runs.
    with open_store(demo_store.url) as store:
        assert all(store.get_run(r).run.replay_of is None for r in store.run_ids())


def test_an_unknown_router_names_the_bundled_graphs(invoke: Invoke, demo_store: DemoStore) -> None:
    """`--router nosuch` is one line listing the bundled graph names that also work."""
    run_id = fan_out_run(demo_store.url)
    result = invoke("runs", "replay", run_id, "--db", demo_store.url, "--router", "nosuch")
    assert result.exit_code == 1
    assert "no such graph file; give a path to a graph YAML file or a bundled graph" in (
        result.stderr
    )
    assert "escalation-path" in result.stderr


def test_replay_with_a_bad_app_fails_cleanly(invoke: Invoke, demo_store: DemoStore) -> None:
    """An `--app` that cannot be imported, or is not a registry, is a one-line error."""
    run_id = fan_out_run(demo_store.url)
    result = invoke("runs", "replay", run_id, "--db", demo_store.url, "--app", "no_such_mod:x")
    assert result.exit_code == 1
    assert "cannot import 'no_such_mod'" in result.stderr
    result = invoke("runs", "replay", run_id, "--db", demo_store.url, "--app", "json:dumps")
    assert result.exit_code == 1
    assert "must be a Registry or a function of no arguments" in result.stderr
    result = invoke("runs", "replay", run_id, "--db", demo_store.url, "--app", "json:JSONDecoder")
    assert result.exit_code == 1
    assert "is a JSONDecoder, not a Registry" in result.stderr
    assert "Traceback" not in result.output


def test_the_replay_table_numbers_a_slot_that_decided_again() -> None:
    """A second model decision in one step and branch (a budget re-route) shows as `model #2`."""
    from rich.console import Console

    from agentroute import ReplayReport, StepDiff
    from agentroute.cli._render import replay_table

    diffs = [
        StepDiff(
            step=0,
            slot="model",
            branch="solver",
            recorded=["strong"],
            replayed=["strong"],
            status="same",
        ),
        StepDiff(
            step=0,
            slot="model",
            branch="solver",
            repeat=1,
            recorded=["cheap"],
            replayed=None,
            status="only_recorded",
        ),
    ]
    report = ReplayReport(
        run_id="r",
        replay_run_id="r2",
        mode="exact",
        diffs=diffs,
        recorded_status="completed",
        replayed_status="completed",
        recorded_answer="a",
        replayed_answer="a",
        model_calls_served=1,
    )
    console = Console(width=120, record=True)
    console.print(replay_table(report))
    lines = [line for line in console.export_text().splitlines() if "solver" in line]
    assert len(lines) == 2
    assert "model #2" not in lines[0]
    assert "model #2" in lines[1]
    assert "only_recorded" in lines[1]
