"""`DaemonThreads`: user callables on daemon threads of their own, a bounded number at once.

A sync user callable (an agent function, a judge) that hangs past its timeout cannot be
stopped, only abandoned. On the event loop's default executor it would hold a worker shared
with store I/O, and `asyncio.run` would wait for it at shutdown. Here each call gets its own
daemon thread, never joined, and a cap bounds how many may be alive (abandoned ones included),
so the caller can refuse new work instead of queueing it behind stuck calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["DaemonThreads"]

T = TypeVar("T")


class DaemonThreads:
    """Runs sync callables on daemon threads, at most `limit` alive at once.

    Args:
        limit: Most threads alive at once (abandoned calls included).
        name: Thread name prefix.

    Raises:
        ValueError: `limit` is below 1.
    """

    def __init__(self, limit: int, name: str) -> None:
        if limit < 1:
            msg = f"DaemonThreads needs a limit of at least 1, got {limit}"
            raise ValueError(msg)
        self.limit = limit
        self.name = name
        self._alive = 0
        self._lock = threading.Lock()

    @property
    def alive(self) -> int:
        """Calls started and not yet returned (including ones whose caller gave up)."""
        with self._lock:
            return self._alive

    def start(self, fn: Callable[..., T], *args: Any, name: str = "") -> asyncio.Future[T] | None:
        """Start `fn(*args)` on a new daemon thread, with the caller's contextvars.

        Must be called from a running event loop. Cancelling the returned future abandons the
        call: its thread runs on, and its result is dropped.

        Args:
            fn: The callable.
            *args: Its arguments.
            name: Suffix of the thread's name.

        Returns:
            A future of the result, or `None` (nothing started) when `limit` calls are alive.
        """
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._alive >= self.limit:
                return None
            self._alive += 1
        future: asyncio.Future[T] = loop.create_future()
        context = contextvars.copy_context()

        def settle(value: Any, error: BaseException | None) -> None:
            if future.done():  # the caller gave up and cancelled it
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(value)

        def work() -> None:
            value: Any = None
            error: BaseException | None = None
            try:
                value = context.run(fn, *args)
            except BaseException as exc:  # handed to the awaiting coroutine
                error = exc
            finally:
                with self._lock:
                    self._alive -= 1
            # RuntimeError: the loop closed while the call ran, so nobody is waiting.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(settle, value, error)

        thread_name = f"{self.name}-{name}" if name else self.name
        try:
            threading.Thread(target=work, name=thread_name, daemon=True).start()
        except BaseException:
            with self._lock:
                self._alive -= 1
            raise
        return future
