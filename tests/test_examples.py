"""Every script in examples/ runs to completion and shows what it claims."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


def _run(path: Path, *args: str) -> str:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    out = subprocess.run(
        [sys.executable, str(path), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=env,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_examples_exist() -> None:
    """The examples folder is not empty (a glob that finds nothing would prove nothing)."""
    assert {p.name for p in EXAMPLES} >= {"quickstart.py", "support_desk.py"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(path: Path, tmp_path: Path) -> None:
    """The example exits 0 (each is also checked for its own output below)."""
    args = (str(tmp_path / "ex.db"),) if path.name == "support_desk.py" else ()
    _run(path, *args)


def test_quickstart_fans_out_and_verifies() -> None:
    """The quickstart routes the two-topic message to both agents and its trace verifies."""
    out = _run(ROOT / "examples" / "quickstart.py")
    assert "('billing', 'shipping')" in out
    assert "verified: True" in out


def test_support_desk_replays(tmp_path: Path) -> None:
    """The support-desk example's exact replay is identical and its counterfactual diverges."""
    out = _run(ROOT / "examples" / "support_desk.py", str(tmp_path / "desk.db"))
    assert "exact replay: identical=True" in out
    assert "counterfactual: 0 divergences" not in out
    assert (tmp_path / "desk.db").exists()


DOC_SCRIPTS = sorted(
    p for p in (ROOT / "docs" / "scripts").glob("*.py") if not p.name.startswith("test_")
)


def test_doc_scripts_exist() -> None:
    """The documentation's code comes from scripts; there are several of them."""
    assert len(DOC_SCRIPTS) >= 5


@pytest.mark.parametrize("path", DOC_SCRIPTS, ids=lambda p: p.name)
def test_doc_script_runs(path: Path) -> None:
    """Every script the docs include runs offline and exits 0 (the docs show real code)."""
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    out = subprocess.run(
        [sys.executable, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=env,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]


def test_the_ant_colony_page_shows_what_its_script_prints() -> None:
    """docs/concepts/ant-colony.md quotes the seeded path its script prints; they agree."""
    out = _run(ROOT / "docs" / "scripts" / "ant_colony.py")
    line = "completed (('planner_large',), ('solver_a',))"
    assert line in out
    assert line in (ROOT / "docs" / "concepts" / "ant-colony.md").read_text(encoding="utf-8")
