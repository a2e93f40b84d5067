"""Per-run objects that cannot live in LangGraph state (it must stay serialisable)."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from agentroute.models import BudgetLedger, ModelClient
from agentroute.routing import BudgetView, StepView
from agentroute.runtime._recorder import RunRecorder

__all__ = ["RunScope"]


@dataclass
class RunScope:
    """Everything one run needs besides its graph state."""

    run_id: str
    task: str
    recorder: RunRecorder
    ledger: BudgetLedger
    client: ModelClient
    metadata: dict[str, Any]
    seed: int
    semaphore: asyncio.Semaphore
    state: dict[str, Any] = field(default_factory=dict)
    versions: dict[int, str] = field(default_factory=dict)
    """Version of each slot strategy when the run started (its params are in the run record)."""
    history: list[StepView] = field(default_factory=list)
    input_counts: Counter[str] = field(default_factory=Counter)
    errors: dict[str, BaseException] = field(default_factory=dict)
    """Each agent's latest exception, the cause of the run's `AgentError` when all failed."""
    _calls: Counter[tuple[int, str]] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def next_call_index(self, step: int, branch: str) -> int:
        """0, 1, 2, ... per (step, branch): the key replay serves recorded outputs by."""
        with self._lock:
            index = self._calls[(step, branch)]
            self._calls[(step, branch)] += 1
            return index

    async def budget_view(self) -> BudgetView:
        """The budget as strategies see it (a shared key's totals come from the store)."""
        ledger = self.ledger
        return await asyncio.to_thread(ledger.snapshot) if ledger.blocking else ledger.snapshot()
