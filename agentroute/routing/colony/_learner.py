"""Quality-gated asynchronous learning: trajectories, judges, and the background worker.

Serving never waits for learning: `AntColony.learn` only puts a `Trajectory` into a bounded
FIFO buffer (`LearningWorker.submit`), and one background thread with its own event loop takes
batches out, judges them, and commits pheromone updates to the store. When the buffer is full
the oldest waiting trajectory is dropped (and counted), so a burst of runs never grows memory
without bound. Every failure (a judge that raises or times out, a store that is down) becomes
a `LearningError` in a bounded list and a log line; nothing is raised into a run.

Sync judges run on threads of their own (`JudgeThreads`, at most `JUDGE_THREADS` at once),
never on an event loop's default executor: a judge that hangs past `judge_timeout_s` cannot be
stopped, and on a shared executor a few of them would leave no thread for the store commits
and refreshes queued behind them.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from agentroute._daemon_threads import DaemonThreads
from agentroute.models import Message, ModelClient, ModelRequest
from agentroute.registry import ModelSpec

__all__ = [
    "JUDGE_THREADS",
    "Judge",
    "JudgeThreads",
    "LLMJudge",
    "LearningError",
    "LearningWorker",
    "Trajectory",
    "WarmUpRun",
]

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Trajectory:
    """A finished run as the learner sees it: the path taken and how it went."""

    run_id: str
    task: str
    """The user's request."""
    path: tuple[str, ...]
    """Agents visited, one per stage."""
    mixture: dict[str, float] | None
    """w(q) used when routing; `None` when unknown (the worker infers it again)."""
    status: str
    answer: str | None
    cost_usd: float
    latency_s: float | None = None
    """Wall-clock time of the path, when measured."""
    score: float | None = None
    """Feedback score in [0, 1], when the trajectory comes from feedback."""
    outputs: dict[str, str | None] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    pheromone_version: int = 0
    """Version of the tables the run was routed with."""


@dataclass(frozen=True)
class WarmUpRun:
    """One labelled run for `AntColony.warm_up`: a request, the path that served it, its score.

    AMRO-S initialises each task's pheromone table offline from labelled data before it serves;
    these are that data. A one-stage pool has one agent per path; an offline evaluation that
    ran every agent on a request gives one `WarmUpRun` per agent.
    """

    task: str
    """The request text (its task mixture is inferred from it unless `mixture` is given)."""
    path: tuple[str, ...]
    """Agents that served it, one per stage, first stage first."""
    score: float
    """Quality in [0, 1]; a score ≥ the colony's `gate_threshold` is an accepted path."""
    cost_usd: float = 0.0
    """What the path cost (its deposit is inversely proportional to the path cost)."""
    latency_s: float | None = None
    """Wall-clock time of the path, when known."""
    mixture: Mapping[str, float] | None = None
    """w(q) of the request; `None` = inferred by the colony's intent model."""


Judge = Callable[[Trajectory], "bool | float | Awaitable[bool | float]"]
"""A quality gate: `judge(trajectory)` → accepted (`True`/`False`, or a score in [0, 1]).

Sync or async; a sync judge runs on a thread of `JudgeThreads`. It is called only in the
background.
"""

JUDGE_THREADS = 4
"""Sync judge calls running at once, at most (counting calls abandoned past their timeout).

Judging is sequential, so one thread is busy at a time while the judge behaves; the others
absorb calls that hang past `judge_timeout_s` and cannot be stopped. While all of them are
stuck, trajectories that need the judge are skipped ("judge busy"), not queued.
"""


class JudgeThreads(DaemonThreads):
    """Runs sync judge calls on daemon threads of their own, at most `size` at once.

    A call that outlives its caller's timeout keeps its thread until it returns (Python cannot
    stop a thread); it still counts, so hung calls use up this small budget and never the event
    loop's default executor that store commits and refreshes need (see `DaemonThreads`).

    Args:
        size: Calls running at once, at most.
        name: Thread name prefix.
    """

    def __init__(
        self, size: int = JUDGE_THREADS, name: str = "agentroute-ant-colony-judge"
    ) -> None:
        super().__init__(size, name)

    @property
    def running(self) -> int:
        """Calls started and not yet returned (including ones whose caller gave up)."""
        return self.alive


_JUDGE_PROMPT = """You grade answers. Reply with exactly one character: 1 if the answer \
correctly and fully resolves the request, 0 otherwise.

Request:
{task}

Answer:
{answer}
"""


class LLMJudge:
    """A judge that asks a model, through the model client, whether the answer is acceptable.

    Args:
        client: The model client (e.g. `LiteLLMClient()` or a test double).
        model: The model to ask (a registry `ModelSpec`, priced).
        prompt: Template with `{task}` and `{answer}`; the reply must start with `1` or `0`.
        max_tokens: Output cap.
    """

    def __init__(
        self,
        client: ModelClient,
        model: ModelSpec,
        *,
        prompt: str = _JUDGE_PROMPT,
        max_tokens: int = 4,
    ) -> None:
        self.client = client
        self.model = model
        self.prompt = prompt
        self.max_tokens = max_tokens

    async def __call__(self, trajectory: Trajectory) -> bool:
        """Ask the model; `True` when it answers 1.

        Raises:
            ValueError: The reply is neither 1 nor 0 (recorded as a judge error).
        """
        request = ModelRequest(
            model=self.model,
            messages=(
                Message(
                    role="user",
                    content=self.prompt.format(
                        task=trajectory.task, answer=trajectory.answer or "(no answer)"
                    ),
                ),
            ),
            max_tokens=self.max_tokens,
            temperature=0.0,
            metadata={"run_id": trajectory.run_id, "purpose": "ant-colony judge"},
        )
        reply = (await self.client.complete(request)).text.strip()
        if reply[:1] in {"0", "1"}:
            return reply[:1] == "1"
        msg = f"judge reply is neither 1 nor 0: {reply[:80]!r}"
        raise ValueError(msg)


@dataclass(frozen=True)
class LearningError:
    """A learning failure, recorded instead of raised."""

    run_id: str
    stage: str
    """`judge`, `intent`, `learn` (any other failure of one trajectory), `commit` or `refresh`."""
    error: str
    at: float


class LearningWorker:
    """A bounded FIFO buffer drained by one background thread.

    Args:
        handler: Async function applied to each batch (in the worker's event loop).
        buffer_size: Trajectories waiting at most; beyond it the oldest is dropped.
        batch_size: Trajectories handed to `handler` at once.
        idle: Called every `idle_s` seconds while the worker runs (e.g. refresh from the store).
        idle_s: Period of `idle`.
        name: Thread name.
    """

    def __init__(
        self,
        handler: Callable[[list[Trajectory]], Awaitable[None]],
        *,
        buffer_size: int = 1024,
        batch_size: int = 32,
        idle: Callable[[], Awaitable[None]] | None = None,
        idle_s: float = 5.0,
        name: str = "agentroute-ant-colony",
    ) -> None:
        if buffer_size < 1 or batch_size < 1:
            msg = "buffer_size and batch_size must be at least 1"
            raise ValueError(msg)
        self.handler = handler
        self.buffer_size = buffer_size
        self.batch_size = batch_size
        self.idle = idle
        self.idle_s = idle_s
        self.name = name
        self._buffer: deque[Trajectory] = deque()
        self._cond = threading.Condition()
        self._busy = False
        self._stop = False
        self._thread: threading.Thread | None = None
        self.submitted = 0
        self.dropped = 0
        self.processed = 0
        self.failed_batches = 0

    def submit(self, trajectory: Trajectory) -> bool:
        """Queue a trajectory without blocking. Returns `False` when an older one was dropped."""
        with self._cond:
            kept = True
            if len(self._buffer) >= self.buffer_size:
                self._buffer.popleft()
                self.dropped += 1
                kept = False
            self._buffer.append(trajectory)
            self.submitted += 1
            self._cond.notify_all()
        self._ensure_started()
        return kept

    @property
    def pending(self) -> int:
        """Trajectories waiting in the buffer."""
        with self._cond:
            return len(self._buffer)

    def _ensure_started(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._cond:
            if self._stop or (self._thread is not None and self._thread.is_alive()):
                return
            self._thread = threading.Thread(target=self._main, name=self.name, daemon=True)
            self._thread.start()

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        last_idle = time.monotonic()
        try:
            while True:
                with self._cond:
                    while not self._buffer and not self._stop:
                        if not self._cond.wait(timeout=self.idle_s):
                            break
                    if self._stop and not self._buffer:
                        return
                    batch = [
                        self._buffer.popleft()
                        for _ in range(min(self.batch_size, len(self._buffer)))
                    ]
                    self._busy = bool(batch)
                try:
                    if batch:
                        loop.run_until_complete(self.handler(batch))
                    if self.idle is not None and time.monotonic() - last_idle >= self.idle_s:
                        last_idle = time.monotonic()
                        loop.run_until_complete(self.idle())
                except Exception as exc:  # the handler records its own errors; belt and braces
                    self.failed_batches += 1
                    log.warning("ant-colony learning batch failed", error=repr(exc))
                finally:
                    with self._cond:
                        self.processed += len(batch)
                        self._busy = False
                        self._cond.notify_all()
        finally:
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until every queued trajectory is processed. Returns `False` on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._buffer or self._busy:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(timeout=remaining)
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Process what is queued, then stop the thread."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    def stats(self) -> dict[str, int]:
        """Counters: submitted, dropped, processed, pending, failed batches."""
        return {
            "submitted": self.submitted,
            "dropped": self.dropped,
            "processed": self.processed,
            "pending": self.pending,
            "failed_batches": self.failed_batches,
        }
