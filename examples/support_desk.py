"""The support desk from a declarative graph, on SQLite, with an exact and a counterfactual replay.

Run: python examples/support_desk.py [path/to/db.sqlite]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import agentroute as ar
from agentroute._demo import DEMO_TASKS, build_router


def main(db: str) -> None:
    """Route the demo messages, then replay the first run two ways."""
    router = build_router(store=f"sqlite:///{db}")
    results = [router.run_sync(task) for task in DEMO_TASKS]
    for r in results:
        print(
            f"{r.run_id[:8]}  {r.status:<13} {' + '.join(r.agents[0]) if r.agents else '-':<20}"
            f" ${r.cost_usd:.6f}"
        )

    first = results[0].run_id
    exact = ar.replay_sync(first, router)
    print(f"exact replay: identical={exact.identical}, served={exact.model_calls_served}")

    other = ar.Router(
        router.registry, agent=ar.Static("general"), store=router.store, name="everything-general"
    )
    counter = ar.replay_sync(first, other)
    print(f"counterfactual: {len(counter.divergences)} divergences")
    for d in counter.divergences:
        print(
            f"  step {d.step} {d.slot:<8} {d.branch:<9} {d.recorded} -> {d.replayed} [{d.status}]"
        )
    router.close()


if __name__ == "__main__":
    path = sys.argv[1] if len(sys.argv) > 1 else str(Path(tempfile.mkdtemp()) / "desk.db")
    main(path)
