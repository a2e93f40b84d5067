"""`agentroute eval cheap-strong` refuses costs that are not prices."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import Invoke


@pytest.mark.parametrize("cost", [-1, -0.001, True])
def test_a_negative_or_boolean_cost_is_refused(
    invoke: Invoke, tmp_path: Path, cost: object
) -> None:
    """A negative `cheap_cost` would make "cost to 95% of strong" negative: exit 1 naming it."""
    rows = [
        {"id": str(i), "text": f"prompt {i}", "cheap": i % 2, "strong": 1,
         "cheap_cost": 0.001, "strong_cost": 0.01}
        for i in range(6)
    ]  # fmt: skip
    rows[3]["cheap_cost"] = cost
    path = tmp_path / "outcomes.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    result = invoke("eval", "cheap-strong", "--outcomes", str(path), "--embedder", "hashing")
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)  # no traceback
    assert result.stderr.startswith(f"error: {path}:4: 'cheap_cost'")
