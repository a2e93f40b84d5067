"""`agentroute demo`: the offline demo end to end, its JSON form, and a real model without a key."""

from __future__ import annotations

import json

import pytest

import agentroute._demo
from agentroute._demo import DEMO_TASKS
from agentroute.errors import ModelAuthError
from agentroute.stores import open_store
from agentroute.testing import ScriptedModelClient
from tests.cli.conftest import DemoStore, Invoke, run_ids


def test_offline_demo_prints_every_task_and_records_the_runs(demo_store: DemoStore) -> None:
    """The offline demo prints a row per default message and records exactly those runs.

    Each row has the agents, skills, model, reason and cost; then come totals and next steps.
    """
    result = demo_store.result
    assert result.exit_code == 0, result.output
    out = result.stdout
    for task in DEMO_TASKS:
        assert task[:30] in out
    assert "billing + shipping" in out  # a fan-out
    assert "rule 'charge-and-delivery' fired" in out  # the agent slot's reason
    assert "skills: invoice-lookup, duplicate-charge, …" in out  # count and top 2 skills
    assert "out_of_scope" in out
    assert "total: 7 run(s)" in out
    assert demo_store.url in out
    for hint in ("agentroute runs show ", "agentroute runs verify --db", "agentroute runs replay "):
        assert hint in out

    with open_store(demo_store.url) as store:
        traces = [store.get_run(run_id) for run_id in store.run_ids()]
    assert sorted(t.run.task for t in traces) == sorted(DEMO_TASKS)
    assert all(t.end is not None for t in traces)
    for trace in traces:
        assert trace.run_id[:8] in out


def test_demo_json_prints_one_object_per_run(invoke: Invoke, db_url: str) -> None:
    """`--json` prints one JSON object per line, one per `--task`, naming the stored run."""
    result = invoke(
        "demo", "--db", db_url, "--json",
        "--task", "I was charged twice and my package never arrived",
        "--task", "My 2FA was turned off and I think I was hacked",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    runs = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["steps"] for r in runs] == [[["billing", "shipping"]], [["security"]]]
    assert runs[1]["branches"][0]["models"] == ["strong"]
    assert runs[1]["why"] == ["rule 'account-security' fired"]
    assert all(r["cost_usd"] > 0 for r in runs)
    assert [r["run_id"] for r in runs] == run_ids(db_url)


def test_demo_escalation_graph_routes_in_two_steps(invoke: Invoke, db_url: str) -> None:
    """`--graph escalation-path` triages first and then hands over to a specialist."""
    result = invoke("demo", "--db", db_url, "--graph", "escalation-path", "--json",
                    "--task", "Where is my parcel? The package never arrived.")  # fmt: skip
    assert result.exit_code == 0, result.output
    (run,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert run["steps"] == [["triage"], ["shipping"]]


def test_demo_with_a_real_model_and_no_key_names_the_variable(
    invoke: Invoke, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--model openai/gpt-4o-mini` without OPENAI_API_KEY fails at once, naming the variable.

    Exit 1, one error line, no traceback, and no run attempted.
    """
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    result = invoke("demo", "--db", db_url, "--model", "openai/gpt-4o-mini")
    assert result.exit_code == 1
    assert "OPENAI_API_KEY" in result.stderr
    assert result.stderr.startswith("error: ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output
    assert run_ids(db_url) == []


def test_demo_stops_at_the_first_model_failure(
    invoke: Invoke, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the model rejects a call, the demo stops after that run with the model's error.

    The other messages are not sent (they would fail the same way); the failed run is stored.
    """
    refusal = ModelAuthError("the provider rejected the credentials", model="cheap")
    client = ScriptedModelClient(default=refusal)
    monkeypatch.setattr(agentroute._demo, "offline_client", lambda: client)
    result = invoke("demo", "--db", db_url)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: run ")
    assert "ModelAuthError: the provider rejected the credentials" in result.stderr
    assert "Traceback" not in result.output
    assert len(run_ids(db_url)) == 1
    assert client.calls >= 1
