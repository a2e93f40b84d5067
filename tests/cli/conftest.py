"""Fixtures for the `agentroute` command's tests: a runner, throwaway SQLite stores, demo runs."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from agentroute.cli import app

CHAINED_TABLES = (
    "agentroute_runs",
    "agentroute_decisions",
    "agentroute_model_calls",
    "agentroute_agent_outputs",
    "agentroute_run_ends",
    "agentroute_feedback",
)
"""The SQL store's tables of run records (learned state is not part of a run)."""

Invoke = Callable[..., Result]


def _invoke(*args: str) -> Result:
    # Wide output so table cells are not wrapped mid-phrase; no AGENTROUTE_DB from the caller.
    runner = CliRunner(env={"COLUMNS": "220", "AGENTROUTE_DB": None})
    return runner.invoke(app, list(args))


@pytest.fixture
def invoke() -> Invoke:
    """Run `agentroute ARGS...` in-process and return the result (stdout and stderr)."""
    return _invoke


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """A fresh SQLite store URL in the test's temporary directory."""
    return f"sqlite:///{tmp_path / 'trace.db'}"


@dataclass(frozen=True)
class DemoStore:
    """A store the offline demo wrote to, and what the command printed."""

    url: str
    path: Path
    result: Result


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> DemoStore:
    """The offline demo's default messages, run once per test module into its own SQLite file.

    Tests that use it only read it; tests that change a store make their own.
    """
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    url = f"sqlite:///{path}"
    return DemoStore(url=url, path=path, result=_invoke("demo", "--db", url))


def run_ids(url: str) -> list[str]:
    """The store's run ids, oldest first, read through the store API."""
    from agentroute.stores import open_store

    with open_store(url) as store:
        return store.run_ids()


def fan_out_run(url: str) -> str:
    """The id of the demo run that fanned out to billing + shipping."""
    from agentroute.stores import open_store

    with open_store(url) as store:
        for run_id in store.run_ids():
            trace = store.get_run(run_id)
            if any(d.slot == "agent" and len(d.chosen) > 1 for d in trace.decisions):
                return run_id
    msg = "the demo recorded no fan-out run"
    raise AssertionError(msg)


def count_rows(path: Path, tables: Sequence[str] = CHAINED_TABLES) -> int:
    """Rows in the given tables of a SQLite file, counted with plain SQL."""
    with closing(sqlite3.connect(path)) as conn:
        return sum(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables)
