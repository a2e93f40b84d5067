"""Agents past their deadline: abandoned sync threads, their model calls, and the thread cap.

Also the errors around them: an agent's own `TimeoutError`, `complete_sync` on the loop's
thread, duplicate run ids in flight and metadata that cannot be recorded.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

import agentroute as ar
from agentroute.testing import ScriptedModelClient

from .conftest import MakeRouter, assert_chained, kinds


def test_run_sync_does_not_wait_for_an_abandoned_sync_agent(registry: ar.Registry) -> None:
    """`run_sync` returns at the agent's timeout, not when its stuck thread finally returns."""
    release = threading.Event()

    @registry.agent(timeout_s=0.05)
    def stuck(ctx: ar.AgentContext, task: str) -> str:
        """Blocks until released."""
        release.wait(5)
        return "late"

    router = ar.Router(
        registry, agent=ar.Static("stuck"), store="memory://", client=ScriptedModelClient()
    )
    started = time.perf_counter()
    try:
        with pytest.raises(ar.AgentError, match=r"timeout_s=0\.05.*abandoned"):
            router.run_sync("go")
        assert time.perf_counter() - started < 2
    finally:
        release.set()


async def test_an_abandoned_sync_agent_is_cut_off_from_models(
    make_router: MakeRouter, registry: ar.Registry, client: ScriptedModelClient
) -> None:
    """After its timeout, a sync agent's `complete_sync` raises; nothing is spent or recorded."""
    go, done = threading.Event(), threading.Event()
    seen: dict[str, Any] = {}

    @registry.agent(timeout_s=0.05)
    def zombie(ctx: ar.AgentContext, task: str) -> str:
        """Calls the model only after its deadline."""
        go.wait(5)
        try:
            return ctx.complete_sync("general: late")
        except BaseException as exc:
            seen["error"] = exc
            raise
        finally:
            done.set()

    router = make_router(ar.Static("zombie"))
    with pytest.raises(ar.AgentError, match="did not finish") as info:
        await router.run("go", budget=ar.Budget(usd=1.0))
    go.set()
    assert await asyncio.to_thread(done.wait, 2)
    assert isinstance(seen["error"], ar.AgentError)
    assert "abandoned" in str(seen["error"])
    assert client.requests == []
    trace = router.trace(info.value.run_id)
    assert kinds(trace.records) == ["run", "decision", "agent_output", "run_end"]
    assert_chained(trace.records)
    assert trace.end is not None
    assert trace.end.cost_usd == 0


async def test_stuck_sync_agents_fail_fast_at_the_thread_cap_and_spare_other_runs(
    make_router: MakeRouter, registry: ar.Registry
) -> None:
    """At the thread cap a new sync branch fails at once; other runs keep working.

    Stuck sync agents hold only their own threads, so async agents and the store go on.
    """
    release = threading.Event()

    @registry.agent(timeout_s=0.05)
    def hung(ctx: ar.AgentContext, task: str) -> str:
        """Hangs until released."""
        release.wait(5)
        return "never"

    router = make_router(
        ar.Rules([ar.Rule("h", ar.Keywords("hang"), ("hung",))], default=("general",))
    )
    router.agent_threads.limit = 2
    try:
        for _ in range(2):
            with pytest.raises(ar.AgentError, match="did not finish"):
                await router.run("please hang")
        started = time.perf_counter()
        with pytest.raises(ar.AgentError, match="all 2 sync agent threads are busy"):
            await router.run("please hang")
        assert time.perf_counter() - started < 1
        result = await asyncio.wait_for(router.run("a healthy question"), 2)
        assert result.status == "completed"
    finally:
        release.set()
    for _ in range(100):
        if router.agent_threads.alive == 0:
            break
        await asyncio.sleep(0.01)
    assert router.agent_threads.alive == 0


async def test_an_agents_own_timeout_error_is_an_ordinary_failure(
    make_router: MakeRouter, registry: ar.Registry
) -> None:
    """A TimeoutError the agent raises is not reported as its timeout; it is the run's cause."""

    @registry.agent(timeout_s=60)
    def fetcher(ctx: ar.AgentContext, task: str) -> str:
        """Its upstream socket times out."""
        msg = "read timed out (upstream CRM)"
        raise TimeoutError(msg)

    router = make_router(ar.Static("fetcher"))
    with pytest.raises(ar.AgentError) as info:
        await router.run("go")
    assert "TimeoutError: read timed out (upstream CRM)" in str(info.value)
    assert "did not finish" not in str(info.value)
    assert isinstance(info.value.__cause__, TimeoutError)
    output = router.trace(info.value.run_id).outputs[0]
    assert output.error_type == "TimeoutError"


async def test_complete_sync_from_an_async_agent_raises_instead_of_deadlocking(
    make_router: MakeRouter, registry: ar.Registry
) -> None:
    """`ctx.complete_sync` on the loop's thread fails the branch with a pointer to `complete`."""

    @registry.agent
    async def mistaken(ctx: ar.AgentContext, task: str) -> str:
        """Uses the sync call from async code."""
        return ctx.complete_sync("general: hi")

    router = make_router(ar.Static("mistaken"))
    with pytest.raises(ar.AgentError, match=r"await ctx\.complete") as info:
        await asyncio.wait_for(router.run("go"), 2)
    assert isinstance(info.value.__cause__, ar.ConfigurationError)


async def test_concurrent_runs_with_one_run_id_are_refused(
    make_router: MakeRouter, registry: ar.Registry
) -> None:
    """Of two concurrent runs given the same run id, the second fails; the trace stays valid."""
    gate = asyncio.Event()

    @registry.agent
    async def slow(ctx: ar.AgentContext, task: str) -> str:
        """Waits for the gate."""
        await asyncio.wait_for(gate.wait(), 2)
        return "done"

    router = make_router(ar.Static("slow"))
    first = asyncio.create_task(router.run("first", run_id="req-42"))
    await asyncio.sleep(0)
    with pytest.raises(ar.ConfigurationError, match="'req-42' is in use"):
        await router.run("second", run_id="req-42")
    gate.set()
    result = await first
    assert result.answer == "done"
    assert router.store.verify("req-42").ok
    assert_chained(router.trace("req-42").records)


async def test_metadata_with_a_non_string_key_is_a_configuration_error(
    make_router: MakeRouter,
) -> None:
    """A metadata key the JSON run record cannot hold is named in a ConfigurationError."""
    router = make_router(ar.Static("general"))
    with pytest.raises(ar.ConfigurationError, match=r"metadata key 1 \(int\)"):
        await router.run("go", metadata={1: "int key"})
