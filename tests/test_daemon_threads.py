"""`DaemonThreads`: the capped daemon threads sync agents and sync judges run on."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest

from agentroute._daemon_threads import DaemonThreads

_WHO: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="nobody")


async def test_a_call_runs_on_a_daemon_thread_with_the_callers_contextvars() -> None:
    """The result comes back through the future; the thread is a daemon and sees contextvars."""
    threads = DaemonThreads(2, "test")
    _WHO.set("caller")

    def probe(x: int) -> tuple[int, str, bool, str]:
        me = threading.current_thread()
        return x * 2, _WHO.get(), me.daemon, me.name

    future = threads.start(probe, 21, name="probe")
    assert future is not None
    assert await future == (42, "caller", True, "test-probe")
    assert threads.alive == 0


async def test_the_cap_counts_abandoned_calls_and_refuses_beyond_it() -> None:
    """A call whose caller gave up still holds its slot until it returns; then it frees it."""
    threads = DaemonThreads(1, "test")
    release = threading.Event()
    stuck = threads.start(release.wait, 5.0)
    assert stuck is not None
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(stuck, 0.05)  # the caller gives up: the thread runs on
    assert threads.alive == 1
    assert threads.start(lambda: 1) is None, "at the cap: nothing started"
    release.set()
    for _ in range(200):
        if threads.alive == 0:
            break
        await asyncio.sleep(0.005)
    assert threads.alive == 0
    again = threads.start(lambda: "ok")
    assert again is not None
    assert await again == "ok"


async def test_an_exception_reaches_the_awaiting_caller() -> None:
    """What the callable raises is raised by the await, unchanged."""
    threads = DaemonThreads(1, "test")

    def boom() -> None:
        raise LookupError("nope")

    future = threads.start(boom)
    assert future is not None
    with pytest.raises(LookupError, match="nope"):
        await future


def test_a_limit_below_one_is_refused() -> None:
    """`limit=0` would refuse every call: a `ValueError` naming it."""
    with pytest.raises(ValueError, match="limit of at least 1, got 0"):
        DaemonThreads(0, "test")
