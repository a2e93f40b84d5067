"""Several OS processes sharing one store learn into the same pheromone tables, losing nothing.

Each worker is a separate Python process (`subprocess`, so nothing is shared but the database):
it opens the store by URL, builds its own `AntColony` on the same key, then commits one accepted
run per round into the same edges, every worker in the same round at once (file signals). Every
commit must get its own version, each process must see its versions strictly increase, and the
final tables must equal the sequential replay of every deposit — a lost update would show as a
missing version, a short `learned` count, or a τ that is too small.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from agentroute.routing.colony import AntColony, PheromoneState, Trajectory, apply_updates
from agentroute.stores import SqlTraceStore

from .conftest import build_registry

PROCESSES = 3
COMMITS = 20
AGENTS = ["plan_a", "plan_b", "solve_a", "solve_b"]
PARAMS = {"batch_size": 1, "ability_rho": 0.0, "cost_scale": 0.01}
"""Fixed cost scale and no ability evaporation: every deposit is the same, so order is moot."""

WORKER = """
import json, sys, time
from pathlib import Path

import agentroute as ar
from agentroute.routing.colony import AntColony, Trajectory
from agentroute.stores import SqlTraceStore

url, key, tag, commits, go = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
params = json.loads(sys.argv[6])
reg = ar.Registry()
reg.task("math", examples=["add two numbers", "solve the equation", "compute the sum"])
reg.task("code", examples=["write a python function", "fix this bug", "refactor the class"])
for name, stage in (("plan_a", 0), ("plan_b", 0), ("solve_a", 1), ("solve_b", 1)):
    async def fn(ctx, task):
        return task
    reg.agent(name=name, description=name, stage=stage)(fn)
store = SqlTraceStore(url)
colony = AntColony(store=store, key=key, **params)
colony.validate(reg, ["plan_a", "plan_b", "solve_a", "solve_b"])
print("READY", flush=True)
versions = []
for i in range(commits):
    # Round i starts for every worker at once, so the workers race for the same versions.
    deadline = time.monotonic() + 60
    while not Path(f"{go}.{i}").exists() and time.monotonic() < deadline:
        time.sleep(0.001)
    traj = Trajectory(
        f"{tag}-{i}", "compute", ("plan_a", "solve_b"), {"math": 1.0}, "completed", "x", 0.01,
        score=1.0,
    )
    versions.append(colony.commit(colony.updates_for([(traj, 1.0)])).version)
    Path(f"{go}.{tag}.{i}").touch()
print(json.dumps({"versions": versions, "conflicts": colony.book.conflicts}), flush=True)
colony.close()
store.close()
"""


def _race(url: str, key: str, tmp_path: Path) -> tuple[list[list[int]], list[int]]:
    """Run the workers against `url`; each one's committed versions (in order) and lost races."""
    SqlTraceStore(url).close()  # create the tables once, before the workers race
    go = tmp_path / f"go-{uuid.uuid4().hex[:6]}"
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WORKER,
                url,
                key,
                f"p{i}",
                str(COMMITS),
                str(go),
                json.dumps(PARAMS),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(PROCESSES)
    ]
    try:
        for w in workers:
            assert w.stdout is not None
            line = w.stdout.readline().strip()
            assert line == "READY", (line, w.stderr.read() if w.stderr else "")
        # All workers are loaded. Release them round by round: in each round every worker
        # commits once, at the same time as the others.
        for i in range(COMMITS):
            Path(f"{go}.{i}").touch()
            deadline = time.monotonic() + 60
            pending = [Path(f"{go}.p{j}.{i}") for j in range(PROCESSES)]
            while pending and time.monotonic() < deadline:
                pending = [f for f in pending if not f.exists()]
                if pending:
                    time.sleep(0.001)
            assert not pending, f"round {i}: no commit from {[f.name for f in pending]}"
        out, conflicts = [], []
        for w in workers:
            stdout, stderr = w.communicate(timeout=120)
            assert w.returncode == 0, stderr[-2000:]
            report = json.loads(stdout.strip().splitlines()[-1])
            out.append(report["versions"])
            conflicts.append(report["conflicts"])
        return out, conflicts
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()


def _check(url: str, key: str, raced: tuple[list[list[int]], list[int]]) -> None:
    per_process, conflicts = raced
    total = PROCESSES * COMMITS
    for versions in per_process:
        assert versions == sorted(versions), "a process saw its own versions go backwards"
        assert len(set(versions)) == COMMITS
    assert sorted(v for vs in per_process for v in vs) == list(range(1, total + 1))
    # The writers really raced: some commits lost to another writer and were re-applied.
    assert sum(conflicts) > 0, "the writers never raced"
    reader = AntColony(store=SqlTraceStore(url), key=key, **PARAMS)  # type: ignore[arg-type]
    reader.validate(build_registry(), AGENTS)
    book = reader.book
    assert book is not None
    history = book.versions()
    assert [v["learned"] for v in history] == list(range(1, total + 1))
    final = book.load()
    assert final is not None
    assert final.version == total
    assert final.meta["learned"] == total
    assert final.meta["accepted"] == total
    math, plan_a = final.tasks.index("math"), final.agents.index("plan_a")
    assert final.ability_n[math, plan_a] == pytest.approx(total)
    assert final.ability_n_all[plan_a] == pytest.approx(total)
    # The tables equal the sequential replay of every deposit.
    traj = Trajectory("x", "compute", ("plan_a", "solve_b"), {"math": 1.0}, "completed", "x", 0.01)
    update = reader.updates_for([(traj, 1.0)])
    expected = PheromoneState.fresh(final.tasks, final.edges, final.agents, reader.tau0)
    for _ in range(total):
        expected = apply_updates(
            expected,
            update,
            rho=reader.rho,
            q=reader.q,
            epsilon=reader.epsilon,
            tau_min=reader.tau_min,
            tau_max=reader.tau_max,
            ability_rho=reader.ability_rho,
        )
    assert final.tau == pytest.approx(expected.tau, rel=1e-6)
    assert final.tau_all == pytest.approx(expected.tau_all, rel=1e-6)
    reader.close()
    book.store.close()


@pytest.mark.postgres
def test_processes_sharing_postgres_lose_no_deposit(pg_url: str, tmp_path: Path) -> None:
    """3 OS processes × 20 commits into one PostgreSQL pheromone key: all 60 deposits land.

    Versions 1..60 are each taken by exactly one commit, each process's versions increase,
    and τ, the ability counts and the per-version `learned` history match a sequential replay.
    """
    key = "ant-colony/shared"
    _check(pg_url, key, _race(pg_url, key, tmp_path))


def test_processes_sharing_sqlite_lose_no_deposit(tmp_path: Path) -> None:
    """The same race on one SQLite file: 3 processes × 20 commits, all 60 deposits land."""
    url = f"sqlite:///{tmp_path / 'colony.db'}"
    key = "ant-colony/shared"
    _check(url, key, _race(url, key, tmp_path))
