"""`call_model`: retries, fallbacks, timeouts, cost and budget around a scripted client."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from agentroute.errors import (
    BudgetExceeded,
    ConfigurationError,
    ModelBadRequest,
    ModelCallError,
    ModelResponseError,
    ModelTimeout,
    ModelUnavailable,
)
from agentroute.models import (
    Attempt,
    Budget,
    BudgetLedger,
    CallResult,
    ModelRequest,
    ModelResponse,
    Reservation,
    Usage,
    call_model,
    complete_once,
    estimate_cost_usd,
)
from agentroute.registry import ModelSpec, RetryPolicy

from .conftest import make_request, make_spec

Step = ModelResponse | ModelCallError | float
"""A scripted outcome: an answer, an error to raise, or seconds to hang."""


def answer(text: str = "4", input_tokens: int = 1000, output_tokens: int = 500) -> ModelResponse:
    """An answer with the given usage."""
    return ModelResponse(
        text=text, usage=Usage(input_tokens=input_tokens, output_tokens=output_tokens)
    )


def unavailable(name: str = "m") -> ModelUnavailable:
    """A retryable failure."""
    return ModelUnavailable("provider down", model=name)


@dataclass
class ScriptedClient:
    """Plays back a script of outcomes per registry model name."""

    script: dict[str, list[Step]]
    calls: list[str] = field(default_factory=list)

    async def complete(self, request: ModelRequest) -> ModelResponse:
        name = request.model.name
        self.calls.append(name)
        step = self.script[name].pop(0)
        if isinstance(step, ModelCallError):
            raise step
        if isinstance(step, float):
            await asyncio.sleep(step)
            return answer()
        return step


@dataclass
class Harness:
    """The pieces around one `call_model`: registry lookup, ledger and attempt reports."""

    specs: dict[str, ModelSpec]
    ledger: BudgetLedger = field(default_factory=BudgetLedger)
    attempts: list[Attempt] = field(default_factory=list)

    async def call(self, client: ScriptedClient, first: str) -> CallResult:
        request = make_request(self.specs[first])
        return await call_model(
            request,
            client=client,
            resolve=self.resolve,
            ledger=self.ledger,
            report=self.attempts.append,
        )

    @property
    def resolve(self) -> Callable[[str], ModelSpec]:
        return self.specs.__getitem__


def harness(*specs: ModelSpec, budget: Budget | None = None) -> Harness:
    """A harness over these specs and a ledger with this budget."""
    return Harness({s.name: s for s in specs}, BudgetLedger(budget))


async def test_success_is_priced_from_the_spec_and_settled() -> None:
    """A first-try answer costs usage × spec prices; the ledger settles exactly that."""
    h = harness(make_spec(input_price_per_mtok=1.0, output_price_per_mtok=2.0))
    client = ScriptedClient({"m": [answer(input_tokens=1000, output_tokens=500)]})
    result = await h.call(client, "m")
    assert result.cost_usd == pytest.approx(0.002)
    assert h.ledger.spent_usd == pytest.approx(0.002)
    assert h.ledger.reserved_usd == 0
    (attempt,) = h.attempts
    assert attempt.error is None
    assert attempt.cost_usd == pytest.approx(0.002)
    assert attempt.estimated_cost_usd > 0


async def test_client_reported_cost_wins() -> None:
    """When the client reports a cost, that is what is charged."""
    h = harness(make_spec())
    reported = ModelResponse(text="4", usage=Usage(input_tokens=10), cost_usd=0.0123)
    result = await h.call(ScriptedClient({"m": [reported]}), "m")
    assert result.cost_usd == 0.0123
    assert h.ledger.spent_usd == 0.0123


async def test_retryable_error_is_retried() -> None:
    """A retryable error is retried; both attempts are reported, the first with its error."""
    h = harness(make_spec())
    client = ScriptedClient({"m": [unavailable(), answer()]})
    result = await h.call(client, "m")
    assert result.response.text == "4"
    assert [a.attempt for a in h.attempts] == [1, 2]
    assert isinstance(h.attempts[0].error, ModelUnavailable)
    assert h.attempts[0].response is None
    assert h.attempts[0].cost_usd == 0
    assert h.attempts[1].error is None


async def test_non_retryable_error_is_not_retried() -> None:
    """A bad request fails at once: one call, one report, reservation released."""
    h = harness(make_spec(), budget=Budget(usd=1.0))
    client = ScriptedClient({"m": [ModelBadRequest("bad", model="m"), answer()]})
    with pytest.raises(ModelBadRequest):
        await h.call(client, "m")
    assert client.calls == ["m"]
    assert len(h.attempts) == 1
    assert h.ledger.reserved_usd == 0
    assert h.ledger.spent_usd == 0


async def test_falls_back_after_retries_are_exhausted() -> None:
    """The first model's retries run out, then the fallback answers; every attempt reported."""
    primary = make_spec(
        "primary",
        fallbacks=("backup",),
        retry=RetryPolicy(max_attempts=2, initial_backoff_s=0, jitter=False),
    )
    backup = make_spec("backup", input_price_per_mtok=3.0, output_price_per_mtok=4.0)
    h = harness(primary, backup, budget=Budget(usd=1.0))
    client = ScriptedClient(
        {"primary": [unavailable("primary"), unavailable("primary")], "backup": [answer()]}
    )
    result = await h.call(client, "primary")
    assert result.model.name == "backup"
    assert client.calls == ["primary", "primary", "backup"]
    assert [(a.model.name, a.attempt) for a in h.attempts] == [
        ("primary", 1),
        ("primary", 2),
        ("backup", 3),
    ]
    assert [a.error is None for a in h.attempts] == [False, False, True]
    assert h.ledger.spent_usd == pytest.approx(backup.cost_usd(1000, 500))
    assert h.ledger.reserved_usd == 0


async def test_every_model_failing_raises_the_last_error() -> None:
    """When the whole chain fails, the last error's type is raised, naming every model tried."""
    primary = make_spec(
        "primary", fallbacks=("backup",), retry=RetryPolicy(max_attempts=1, jitter=False)
    )
    backup = make_spec("backup", retry=RetryPolicy(max_attempts=1, jitter=False))
    h = harness(primary, backup, budget=Budget(usd=1.0))
    last = ModelTimeout("slow", model="backup")
    client = ScriptedClient({"primary": [unavailable("primary")], "backup": [last]})
    with pytest.raises(ModelTimeout, match="'primary', 'backup'") as info:
        await h.call(client, "primary")
    assert info.value.model == "backup"
    assert info.value.__cause__ is last
    assert len(h.attempts) == 2
    assert h.ledger.reserved_usd == 0
    assert h.ledger.spent_usd == 0


async def test_slow_client_times_out() -> None:
    """A client slower than `timeout_s` gives `ModelTimeout`, retried then raised."""
    spec = make_spec(
        timeout_s=0.02, retry=RetryPolicy(max_attempts=2, initial_backoff_s=0, jitter=False)
    )
    h = harness(spec)
    client = ScriptedClient({"m": [5.0, 5.0]})
    with pytest.raises(ModelTimeout, match=r"within 0\.02 s"):
        await h.call(client, "m")
    assert [type(a.error) for a in h.attempts] == [ModelTimeout, ModelTimeout]


async def test_empty_answer_is_retried() -> None:
    """A blank answer is a retryable `ModelResponseError`; the next answer is used."""
    h = harness(make_spec())
    client = ScriptedClient({"m": [answer("  \n"), answer("4")]})
    result = await h.call(client, "m")
    assert result.response.text == "4"
    assert isinstance(h.attempts[0].error, ModelResponseError)


async def test_budget_refuses_before_calling_the_client() -> None:
    """An estimate that does not fit raises `BudgetExceeded`; the client is never called."""
    h = harness(make_spec(input_price_per_mtok=100.0, output_price_per_mtok=100.0), budget=None)
    h.ledger = BudgetLedger(Budget(usd=0.001))
    client = ScriptedClient({"m": [answer()]})
    with pytest.raises(BudgetExceeded):
        await h.call(client, "m")
    assert client.calls == []
    assert h.attempts == []
    assert h.ledger.reserved_usd == 0


async def test_cancelled_call_releases_its_reservation() -> None:
    """Cancelling a call in flight releases its reservation and charges nothing."""
    h = harness(make_spec(), budget=Budget(usd=1.0))
    task = asyncio.create_task(h.call(ScriptedClient({"m": [5.0]}), "m"))
    await asyncio.sleep(0.01)
    assert h.ledger.reserved_usd > 0
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert h.ledger.reserved_usd == 0
    assert h.ledger.spent_usd == 0


class SlowDatabaseLedger(BudgetLedger):
    """A ledger that reserves "in a database": off the event loop, held up until `go` is set."""

    blocking = True

    def __init__(self, budget: Budget) -> None:
        super().__init__(budget)
        self.go = threading.Event()
        self.reserving = threading.Event()
        self.reserved = threading.Event()

    def reserve(self, *args: Any, **kwargs: Any) -> Reservation:
        self.reserving.set()
        self.go.wait(5.0)
        try:
            return super().reserve(*args, **kwargs)
        finally:
            self.reserved.set()


async def test_a_call_cancelled_while_reserving_leaks_no_reservation() -> None:
    """A timeout that lands while the reservation is still being written releases it once made.

    The worker thread completes the reservation after the caller is gone; before the fix
    nothing released it, and a shared key stayed charged until the reservation's TTL.
    """
    ledger = SlowDatabaseLedger(Budget(usd=1.0))
    h = Harness({"m": make_spec()}, ledger)
    task = asyncio.create_task(h.call(ScriptedClient({"m": [answer()]}), "m"))
    assert await asyncio.to_thread(ledger.reserving.wait, 5.0)
    task.cancel()
    await asyncio.sleep(0.01)  # the cancellation reaches the call while the thread still waits
    ledger.go.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(ledger.reserved.wait, 5.0)
    await asyncio.sleep(0.05)  # time for a release, if one is coming
    assert ledger.reserved_usd == 0
    assert ledger.spent_usd == 0
    assert h.attempts == []


async def test_unpriced_spec_is_a_bug_upstream() -> None:
    """A spec whose prices were never resolved cannot be budgeted; it fails loudly."""
    h = harness(ModelSpec(name="m", model="openai/gpt-4o-mini"), budget=Budget(usd=1.0))
    with pytest.raises(ValueError, match="resolve them"):
        await h.call(ScriptedClient({"m": [answer()]}), "m")


async def test_concurrent_calls_never_exceed_the_budget() -> None:
    """200 concurrent calls against one ledger settle no more than the budget, to the cent."""
    spec = make_spec(input_price_per_mtok=10.0, output_price_per_mtok=30.0, max_output_tokens=500)
    request = make_request(spec)
    limit = 0.50
    ledger = BudgetLedger(Budget(usd=limit))
    estimate = estimate_cost_usd(spec, request)

    class Client:
        async def complete(self, req: ModelRequest) -> ModelResponse:
            await asyncio.sleep(0.001)
            return answer(input_tokens=10, output_tokens=500)

    async def one() -> float | None:
        try:
            result = await call_model(
                request,
                client=Client(),
                resolve=lambda n: spec,
                ledger=ledger,
                report=lambda _: None,
            )
        except BudgetExceeded:
            return None
        return result.cost_usd

    costs = await asyncio.gather(*(one() for _ in range(200)))
    settled = [c for c in costs if c is not None]
    assert round(sum(settled), 2) <= limit
    assert round(ledger.spent_usd, 2) <= limit
    assert ledger.reserved_usd == 0
    assert len(settled) == int(limit // estimate), "every call that fitted ran"


async def test_complete_once_calls_the_spec_bills_the_ledger_and_skips_fallbacks() -> None:
    """`complete_once` retries per the spec, settles on the ledger, and skips fallbacks.

    It returns the text, and never follows a fallback name it cannot resolve outside a registry.
    """
    spec = make_spec(fallbacks=("backup",))
    client = ScriptedClient({"m": [unavailable(), answer("four", 1000, 500)]})
    ledger = BudgetLedger()
    text = await complete_once(spec, "What is 2 + 2?", client=client, ledger=ledger)
    assert text == "four"
    assert client.calls == ["m", "m"]
    assert ledger.spent_usd == pytest.approx(0.002)
    failing = ScriptedClient({"m": [unavailable(), unavailable(), unavailable()]})
    with pytest.raises(ModelUnavailable):
        await complete_once(spec, "again", client=failing)
    assert failing.calls == ["m", "m", "m"]


async def test_complete_once_refuses_a_model_without_a_price() -> None:
    """An unpriced model that LiteLLM's map does not know is refused, not treated as free."""
    spec = ModelSpec(name="mystery", model="nowhere/unknown-model-xyz")
    client = ScriptedClient({"mystery": [answer()]})
    with pytest.raises(ConfigurationError, match="unknown-model-xyz"):
        await complete_once(spec, "hi", client=client)
    assert client.calls == []
