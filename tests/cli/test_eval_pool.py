"""`agentroute eval pool`: checked inputs, one definition of the best single agent, strict JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import Invoke


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    return path


def _strict_json(text: str) -> Any:
    """Parse `text` as JSON proper: `NaN` and `Infinity` are errors, not numbers."""

    def refuse(name: str) -> Any:
        msg = f"{name} is not JSON"
        raise ValueError(msg)

    return json.loads(text, parse_constant=refuse)


def _sparse(path: Path) -> Path:
    """A scores 1.0 on the even lines and has no outcome on the odd ones; B scores 0.6 on all."""
    rows = []
    for i in range(20):
        outcomes = {"B": 0.6, "A": 1.0} if i % 2 == 0 else {"B": 0.6, "A": None}
        rows.append({"id": str(i), "text": f"q{i}", "task": "t", "outcomes": outcomes,
                     "costs": {"A": 0.03, "B": 0.01}})  # fmt: skip
    return _write(path, rows)


def test_best_single_is_one_definition_used_everywhere(invoke: Invoke, tmp_path: Path) -> None:
    """With sparse outcomes, the best single agent is chosen, scored and priced one way.

    A scores 1.0 where it has a score but has none on half the lines (counting 0): its quality
    over the file is 0.5, below B's 0.6, so B is the best single agent. The `best-single`
    strategy is that reference exactly: same quality and cost, regret 0 (never negative).
    """
    path = _sparse(tmp_path / "sparse.jsonl")
    result = invoke("eval", "pool", "--outcomes", str(path), "--strategy", "best-single", "--json")
    assert result.exit_code == 0, result.output
    report = _strict_json(result.stdout)
    assert report["best_single"] == "B"
    assert report["best_single_quality"] == pytest.approx(0.6)
    assert report["best_single_cost"] == pytest.approx(0.2)
    assert report["quality"] == pytest.approx(report["best_single_quality"])
    assert report["cost"] == pytest.approx(report["best_single_cost"])
    assert report["regret"] == 0
    assert report["picks"] == {"A": 0, "B": 20}

    result = invoke("eval", "pool", "--outcomes", str(path), "--strategy", "ucb", "--json")
    assert _strict_json(result.stdout)["best_single"] == "B"  # whatever the strategy


BAD_LINES = [
    ({"outcomes": {"A": "abc", "B": 0.5}}, "the score of 'A' is 'abc'"),
    ({"outcomes": {"A": "0.5", "B": 0.5}}, "the score of 'A' is '0.5'"),
    ({"outcomes": {"A": [1], "B": 0.5}}, "the score of 'A' is [1]"),
    ({"outcomes": {"A": True, "B": 0.5}}, "the score of 'A' is True"),
    ({"outcomes": {"A": 1.5, "B": 0.5}}, "scores are in [0, 1]"),
    ({"outcomes": {"A": 1, "B": 0.5}, "costs": {"A": "cheap"}}, "the cost of 'A' is 'cheap'"),
    ({"outcomes": {"A": 1, "B": 0.5}, "costs": [0.1]}, "'costs' must be an object"),
    ({"outcomes": {"A": 1, "B": 0.5}, "costs": 0.3}, "'costs' must be an object"),
    ({"outcomes": {"A": 1, "B": 0.5}, "costs": {"A": -0.1}}, "costs are dollars, >= 0"),
    ({"outcomes": {"A": 1, "B": 0.5}, "costs": {"A": float("inf")}}, "the cost of 'A' is inf"),
    ({"outcomes": {"A": 1, "B": 0.5}, "costs": {"A": float("nan")}}, "the cost of 'A' is nan"),
]


@pytest.mark.parametrize(("line", "says"), BAD_LINES)
def test_a_bad_score_or_cost_is_one_error_naming_the_line(
    invoke: Invoke, tmp_path: Path, line: dict[str, Any], says: str
) -> None:
    """Scores must be numbers in [0, 1] (or null), costs an object of finite numbers >= 0.

    Strings (even `"0.5"`), booleans, lists, NaN and infinities are refused with
    `error: path:line: ...` and exit 1, not a traceback and not silently converted.
    """
    good = {"id": "0", "text": "fine", "outcomes": {"A": 1, "B": 0.5}}
    path = _write(tmp_path / "bad.jsonl", [good, {"id": "1", "text": "x", **line}])
    result = invoke("eval", "pool", "--outcomes", str(path), "--json")
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)  # no traceback
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: {path}:2: ")
    assert says in result.stderr


def test_a_cost_for_no_agent_is_an_error_naming_the_agents(invoke: Invoke, tmp_path: Path) -> None:
    """A cost key that names no agent of the outcomes (a typo) fails; it is not priced $0."""
    rows = [{"id": "1", "text": "a", "outcomes": {"gpt-4": 1, "mini": 0.5},
             "costs": {"gpt4": 0.03, "mini": 0.001}}]  # fmt: skip
    path = _write(tmp_path / "typo.jsonl", rows)
    result = invoke("eval", "pool", "--outcomes", str(path))
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(f"error: {path}:1: 'costs' names 'gpt4'")
    assert "'gpt-4', 'mini'" in result.stderr
    assert "did you mean 'gpt-4'?" in result.stderr


def test_a_line_may_price_an_agent_it_has_no_outcome_for(invoke: Invoke, tmp_path: Path) -> None:
    """Costs are checked against the agents of the whole file, not of the line."""
    rows = [
        {"id": "1", "text": "a", "outcomes": {"A": 1, "B": 0.5}, "costs": {"A": 0.1, "B": 0.2}},
        {"id": "2", "text": "b", "outcomes": {"B": 0.5}, "costs": {"A": 0.1, "B": 0.2}},
    ]
    result = invoke("eval", "pool", "--outcomes", str(_write(tmp_path / "o.jsonl", rows)))
    assert result.exit_code == 0, result.output


def test_json_output_never_holds_nan(capsys: pytest.CaptureFixture[str]) -> None:
    """The commands' one JSON writer turns NaN and infinities into null, at any depth."""
    from agentroute.cli._common import echo_json

    echo_json({"a": float("nan"), "b": [1.0, float("inf"), (float("-inf"), 2)], "c": "x"})
    assert _strict_json(capsys.readouterr().out) == {
        "a": None,
        "b": [1.0, None, [None, 2]],
        "c": "x",
    }


def test_a_task_named_c0_is_still_a_declared_task(invoke: Invoke, tmp_path: Path) -> None:
    """Lines whose `task` values include `c0` run in field mode, as the default promises.

    The colony once took a first task name `c0` for its own text clusters and ran them as such,
    so the same file scored differently with and without `--tasks-from field`.
    """
    rows = []
    for i in range(60):
        task = "c0" if i % 2 else "returns"
        good = "A" if task == "c0" else "B"
        outcomes = {"A": 1.0 if good == "A" else 0.0, "B": 1.0 if good == "B" else 0.0}
        rows.append({"id": str(i), "text": f"q{i}", "task": task, "outcomes": outcomes})
    path = _write(tmp_path / "outcomes.jsonl", rows)
    default = invoke("eval", "pool", "--outcomes", str(path), "--json")
    field = invoke("eval", "pool", "--outcomes", str(path), "--tasks-from", "field", "--json")
    assert default.exit_code == 0, default.output
    assert field.exit_code == 0, field.output
    assert _strict_json(default.stdout) == _strict_json(field.stdout)
