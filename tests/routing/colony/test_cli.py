"""`agentroute eval pool` and `agentroute pheromones ...` on small synthetic inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from agentroute.cli import app
from agentroute.cli._pheromones import pheromones_app
from agentroute.routing.colony import Trajectory
from agentroute.stores import SqlTraceStore

from .conftest import WordEmbedder, build_registry, make_colony

AGENTS = ["plan_a", "plan_b", "solve_a", "solve_b"]


def _outcomes(path: Path, n: int = 600, with_task: bool = True) -> Path:
    """Two task types; `strong` is best on math, `coder` on code, `cheap` is mediocre."""
    rng = np.random.default_rng(0)
    quality = {
        "math": {"strong": 0.9, "coder": 0.3, "cheap": 0.5},
        "code": {"strong": 0.4, "coder": 0.9, "cheap": 0.5},
    }
    texts = {"math": "compute the sum of numbers", "code": "write a python function"}
    with path.open("w") as f:
        for i in range(n):
            task = "math" if rng.random() < 0.5 else "code"
            line = {
                "id": str(i),
                "text": f"{texts[task]} {i % 7}",
                "outcomes": {a: float(rng.random() < q) for a, q in quality[task].items()},
                "costs": {"strong": 0.01, "coder": 0.004, "cheap": 0.001},
            }
            if with_task:
                line["task"] = task
            f.write(json.dumps(line) + "\n")
    return path


def _run(*args: str) -> dict[str, float]:
    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["eval", "pool", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_eval_pool_json_has_the_documented_keys(tmp_path: Path) -> None:
    """`--json` prints one object with quality, cost, best single, oracle and regret."""
    out = _run("--outcomes", str(_outcomes(tmp_path / "o.jsonl")), "--strategy", "random")
    assert {
        "quality",
        "cost",
        "best_single_quality",
        "best_single_cost",
        "oracle_quality",
        "regret",
    } <= set(out)
    assert 0 <= out["quality"] <= out["oracle_quality"] <= 1


def test_ant_colony_beats_the_best_single_agent_with_task_types(tmp_path: Path) -> None:
    """With task types from the field, the colony learns the per-task best agent online."""
    path = _outcomes(tmp_path / "o.jsonl")
    colony = _run("--outcomes", str(path), "--strategy", "ant-colony", "--tasks-from", "field")
    single = _run("--outcomes", str(path), "--strategy", "best-single")
    rand = _run("--outcomes", str(path), "--strategy", "random")
    assert colony["quality"] > colony["best_single_quality"]
    assert colony["regret"] < 0 < rand["regret"]
    assert single["regret"] == pytest.approx(0.0)


def test_tasks_can_be_inferred_from_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--tasks-from text` clusters the texts online (a tiny embedder stands in for MiniLM)."""
    import agentroute.routing.colony._intent as intent_module

    monkeypatch.setattr(intent_module, "default_embedder", WordEmbedder)
    path = _outcomes(tmp_path / "o.jsonl", with_task=False)
    out = _run(
        "--outcomes", str(path), "--strategy", "ucb", "--tasks-from", "text", "--clusters", "4"
    )
    assert out["quality"] > out["best_single_quality"] - 0.1


def test_a_bad_outcomes_line_names_the_line(tmp_path: Path) -> None:
    """A score outside [0, 1] fails with the file and line number."""
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "x", "outcomes": {"a": 1}}\n{"text": "y", "outcomes": {"a": 3}}\n')
    result = CliRunner().invoke(app, ["eval", "pool", "--outcomes", str(path)])
    assert result.exit_code == 1
    assert "bad.jsonl:2" in result.output


def test_pheromones_show_versions_diff_export_rollback(tmp_path: Path) -> None:
    """Tables written by a colony are shown as heatmaps, listed, diffed, exported and restored."""
    url = f"sqlite:///{tmp_path / 'p.db'}"
    store = SqlTraceStore(url)
    colony = make_colony(store=store, batch_size=1)
    colony.validate(build_registry(), AGENTS)
    for i, score in enumerate((1.0, 1.0, 0.0)):
        traj = Trajectory(f"r{i}", "t", ("plan_a", "solve_b"), {"math": 1.0}, "ok", "x", 0.01)
        colony.commit(colony.updates_for([(traj, score)]))
    colony.close()
    store.close()
    runner = CliRunner(env={"COLUMNS": "200"})

    def run(*args: str) -> str:
        result = runner.invoke(pheromones_app, [*args, "--db", url])
        assert result.exit_code == 0, result.output
        return result.stdout

    shown = run("show", "--task", "math")
    assert "effective τ for task 'math'" in shown
    assert "solve_b" in shown
    assert "τ for task 'math'" in run("show", "--task", "math", "--raw")
    data = json.loads(run("show", "--json"))
    assert data["version"] == 3
    assert data["effective"] is True
    assert data["tables"]["math"]["plan_a->solve_b"] > data["tables"]["code"]["plan_a->solve_b"]
    # 'code' learned nothing: stored, it is still τ0; as decisions see it, it has taken the
    # all-task table's deposits on plan_a->solve_b.
    raw = json.loads(run("show", "--json", "--raw"))
    assert raw["effective"] is False
    tau0 = colony.tau0
    assert raw["tables"]["code"]["plan_a->solve_b"] == pytest.approx(tau0)
    assert data["tables"]["code"]["plan_a->solve_b"] > tau0
    assert "rollback" not in run("versions")
    assert "plan_a->solve_b" in run("diff", "1", "3")
    files = run("export", "--out", str(tmp_path / "png")).split()
    assert len(files) == 2
    assert all(Path(f).read_bytes()[:4] == b"\x89PNG" for f in files)
    assert "as version 4" in run("rollback", "1")
    missing = runner.invoke(pheromones_app, ["rollback", "99", "--db", url])
    assert missing.exit_code == 1
    assert colony.book is not None
    key = colony.book.key
    assert str(missing.exception) == (
        f"no version 99 of pheromone state {key!r} in this store; list its versions "
        f"with `agentroute pheromones versions --db {url} --key {key}`"
    )
    assert "as version 5" in run("rollback", "2")  # the failed rollback wrote nothing


def _rest(path: Path, skip: int, out: Path) -> Path:
    """The lines of `path` after the first `skip` (the stream a warm-up of `skip` leaves)."""
    out.write_text("".join(path.read_text().splitlines(keepends=True)[skip:]))
    return out


def test_warm_up_serves_the_per_task_best_agent_from_the_first_streamed_query(
    tmp_path: Path,
) -> None:
    """`--warm-up N` learns every outcome of the first N lines before serving.

    On the same 40 streamed lines, the warmed-up colony and UCB1 score near the per-task best
    (0.9) and above their cold selves, which spend those lines exploring.
    """
    path = _outcomes(tmp_path / "o.jsonl", n=240)
    rest = _rest(path, 200, tmp_path / "rest.jsonl")
    for strategy in ("ant-colony", "ucb"):
        args = ("--strategy", strategy, "--tasks-from", "field")
        warm = _run("--outcomes", str(path), "--warm-up", "200", *args)
        cold = _run("--outcomes", str(rest), *args)
        assert warm["n"] == cold["n"] == 40
        assert warm["warm_up"] == 200
        assert cold["warm_up"] == 0
        assert warm["oracle_quality"] == cold["oracle_quality"]
        assert warm["quality"] >= 0.8, (strategy, warm)
        assert warm["quality"] > cold["quality"], (strategy, warm, cold)
        assert warm["picks"].get("cheap", 0) == 0, (strategy, warm["picks"])


def test_warm_up_lines_are_not_measured(tmp_path: Path) -> None:
    """Every metric, the best single agent included, is over the streamed lines only.

    A is perfect on the 10 warm-up lines and B on the 10 streamed ones, so B is the best single.
    """
    rows = [
        {"id": str(i), "text": f"q{i}", "task": "t",
         "outcomes": {"A": 1.0, "B": 0.0} if i < 10 else {"A": 0.0, "B": 1.0},
         "costs": {"A": 0.5, "B": 0.25}}
        for i in range(20)
    ]  # fmt: skip
    path = tmp_path / "o.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = _run("--outcomes", str(path), "--strategy", "best-single", "--warm-up", "10")
    assert out["n"] == 10
    assert out["best_single"] == "B"
    assert out["best_single_quality"] == out["quality"] == out["oracle_quality"] == 1.0
    assert out["best_single_cost"] == out["cost"] == pytest.approx(2.5)
    assert out["regret"] == out["regret_oracle"] == 0.0


def test_warm_up_with_tasks_from_text_seeds_the_clusters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With `--tasks-from text` the warm-up lines seed the colony's clusters.

    Their inferred mixtures name the colony's tasks (no unknown-task error), and the warmed-up
    colony serves near the per-task best from the first streamed line.
    """
    import agentroute.routing.colony._intent as intent_module

    monkeypatch.setattr(intent_module, "default_embedder", WordEmbedder)
    path = _outcomes(tmp_path / "o.jsonl", n=240, with_task=False)
    out = _run(
        "--outcomes", str(path), "--strategy", "ant-colony", "--tasks-from", "text",
        "--clusters", "4", "--warm-up", "200",
    )  # fmt: skip
    assert out["n"] == 40
    assert out["warm_up"] == 200
    assert out["quality"] >= 0.8, out


def test_a_warm_up_that_leaves_nothing_to_stream_is_refused(tmp_path: Path) -> None:
    """`--warm-up` must leave a line to stream; the error names the option and the line count."""
    path = _outcomes(tmp_path / "o.jsonl", n=20)
    result = CliRunner().invoke(app, ["eval", "pool", "--outcomes", str(path), "--warm-up", "20"])
    assert result.exit_code == 1
    assert "--warm-up 20" in result.output
    assert "20 lines" in result.output
    assert "at most 19" in result.output
    negative = CliRunner().invoke(app, ["eval", "pool", "--outcomes", str(path), "--warm-up", "-1"])
    assert negative.exit_code == 2
