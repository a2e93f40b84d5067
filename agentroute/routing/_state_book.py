"""The common part of the books that keep learned routing state in a trace store.

A pheromone table (`PheromoneBook`) and a kNN memory (`KnnMemoryBook`) are each one learned-state
key, versioned by the store with optimistic concurrency: a write names the version it was based
on and loses the race when another writer got there first. `StateBook.retrying` is the one loop
that re-reads and re-applies after a lost race, so no writer's update is lost.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import structlog

from agentroute.errors import StateConflict
from agentroute.stores import TraceStore

__all__ = ["StateBook"]

log = structlog.get_logger(__name__)

_T = TypeVar("_T")


class StateBook:
    """One learned-state key in a trace store, written with retries after lost races.

    Args:
        store: Any `TraceStore` (in memory, SQLite, PostgreSQL).
        key: The learned-state key.
        max_retries: Re-reads after a lost race before giving up on one write.
    """

    def __init__(self, store: TraceStore, key: str, *, max_retries: int = 20) -> None:
        self.store = store
        self.key = key
        self.max_retries = max_retries
        self.conflicts = 0
        """Lost races recovered by re-reading (a counter, for tests and reports)."""

    def retrying(self, attempt: Callable[[], _T], what: str) -> _T:
        """Run `attempt` (read, change, `put_state`) until it does not lose a race.

        `attempt` must re-read the latest version each time it runs: after a lost race it is
        simply run again, after a short back-off.

        Raises:
            StateConflict: More than `max_retries` races lost in a row.
        """
        for n in range(self.max_retries + 1):
            try:
                return attempt()
            except StateConflict:
                self.conflicts += 1
                log.debug("state write lost a race; re-reading", key=self.key, what=what, attempt=n)
                time.sleep(0.001 * (n + 1))
        msg = f"gave up {what} {self.key!r} after {self.max_retries + 1} lost races in a row"
        raise StateConflict(msg)
