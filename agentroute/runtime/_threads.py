"""`AgentThreads`: the daemon threads sync agent functions run in, and `Branch`, their leash.

Sync agents never run on the event loop's default executor: that executor is shared with the
trace store (flush, `has_run`) and budget snapshots, and `asyncio.run` joins its threads at
shutdown. A sync agent stuck past its `timeout_s` cannot be killed, only abandoned; on the
default executor it would hold a shared worker and make `run_sync` wait for it. Here each call
gets its own daemon thread, and a cap bounds how many may be alive (stuck ones included), so a
new sync branch fails fast instead of queueing behind stuck ones.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from agentroute._daemon_threads import DaemonThreads
from agentroute.errors import AgentError

__all__ = ["DEFAULT_AGENT_THREADS", "AgentThreads", "Branch"]

T = TypeVar("T")

DEFAULT_AGENT_THREADS = 32
"""How many sync agent calls one router runs at once, abandoned (timed-out) ones included."""


class Branch:
    """One attempt of one agent in one run; cancelled when it times out or the run ends.

    A cancelled branch's `ctx.complete` / `ctx.complete_sync` raise `AgentError` instead of
    calling a model, and its in-flight calls are cancelled, so an abandoned agent thread can
    neither spend money nor write to the trace.
    """

    def __init__(self, agent: str, run_id: str) -> None:
        self.agent = agent
        self.run_id = run_id
        self.why = ""
        self._cancelled = threading.Event()
        self._lock = threading.Lock()
        self._calls: set[concurrent.futures.Future[Any]] = set()

    @property
    def cancelled(self) -> bool:
        """Whether the branch was abandoned."""
        return self._cancelled.is_set()

    def cancel(self, why: str) -> None:
        """Abandon the branch: refuse its further model calls and cancel those in flight."""
        with self._lock:
            if not self._cancelled.is_set():
                self.why = why
                self._cancelled.set()
            calls = list(self._calls)
        for call in calls:
            call.cancel()

    def check(self) -> None:
        """Raise when the branch was abandoned.

        Raises:
            AgentError: The branch timed out or its run ended.
        """
        if self._cancelled.is_set():
            msg = (
                f"agent {self.agent!r} called a model after its branch was abandoned "
                f"({self.why}); the call was refused. Make the agent finish within its "
                "timeout_s, or raise timeout_s"
            )
            raise AgentError(msg, agent=self.agent, run_id=self.run_id)

    def track(self, call: concurrent.futures.Future[Any]) -> None:
        """Cancel `call` when the branch is cancelled (now, if it already is)."""
        with self._lock:
            tracked = not self._cancelled.is_set()
            if tracked:
                self._calls.add(call)
        if not tracked:
            call.cancel()
            return
        # Outside the lock: a call already done runs the callback right here.
        call.add_done_callback(self._forget)

    def _forget(self, call: concurrent.futures.Future[Any]) -> None:
        with self._lock:
            self._calls.discard(call)


class AgentThreads:
    """Runs sync agent functions on daemon threads, at most `limit` alive at once.

    Threads are never joined: an abandoned call keeps its thread until it returns, but neither
    `asyncio.run` nor interpreter exit waits for it (see `DaemonThreads`).

    Args:
        limit: Most threads alive at once; a call beyond it fails at once.
    """

    def __init__(self, limit: int = DEFAULT_AGENT_THREADS) -> None:
        self._threads = DaemonThreads(limit, "agentroute-agent")

    @property
    def limit(self) -> int:
        """Most threads alive at once."""
        return self._threads.limit

    @limit.setter
    def limit(self, value: int) -> None:
        self._threads.limit = value

    @property
    def alive(self) -> int:
        """Threads running now (abandoned ones included)."""
        return self._threads.alive

    async def run(self, fn: Callable[..., T], *args: Any, agent: str, run_id: str) -> T:
        """Call `fn(*args)` in a new daemon thread with this context's contextvars.

        Cancelling the await abandons the thread (it runs on; its result is dropped).

        Raises:
            AgentError: `limit` threads are alive already (agents stuck past their timeout).
        """
        future = self._threads.start(fn, *args, name=agent)
        if future is None:
            msg = (
                f"agent {agent!r} cannot start: all {self.limit} sync agent threads are "
                "busy (sync agents stuck past their timeout_s keep theirs until they "
                "return); make stuck agents return, e.g. give their blocking calls a "
                "timeout"
            )
            raise AgentError(msg, agent=agent, run_id=run_id)
        return await future
