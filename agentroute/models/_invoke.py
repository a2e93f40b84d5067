"""One model call as the runtime makes it: budget reservation, timeout, retries, fallbacks.

Every attempt is reported to the caller (the runtime records it in the trace), successful or not.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from agentroute.errors import ModelCallError, ModelResponseError, ModelTimeout
from agentroute.models._budget import BudgetLedger, Reservation, estimate_cost_usd
from agentroute.models._protocol import Message, ModelClient, ModelRequest, ModelResponse
from agentroute.models._retry import retry_async
from agentroute.registry import ModelSpec

__all__ = ["Attempt", "CallResult", "call_model", "complete_once"]

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt of one call, as reported to the runtime."""

    model: ModelSpec
    attempt: int
    request: ModelRequest
    response: ModelResponse | None
    estimated_cost_usd: float
    cost_usd: float
    latency_ms: float
    error: ModelCallError | None


@dataclass(frozen=True, slots=True)
class CallResult:
    """The successful outcome of a call."""

    response: ModelResponse
    model: ModelSpec
    """The model that answered (a fallback, when the first failed)."""
    cost_usd: float


async def call_model(
    request: ModelRequest,
    *,
    client: ModelClient,
    resolve: Callable[[str], ModelSpec],
    ledger: BudgetLedger,
    report: Callable[[Attempt], None],
) -> CallResult:
    """Make one call with the spec's timeout, retry policy and fallbacks, within the budget.

    Args:
        request: The call; `request.model` must carry prices.
        client: Performs single attempts.
        resolve: Registry name → priced `ModelSpec`, for fallbacks.
        ledger: The run's budget ledger.
        report: Receives every attempt (for the trace).

    Raises:
        BudgetExceeded: The first model's estimated cost does not fit the budget (fallbacks
            are tried only when a model fails, never to dodge the budget).
        ModelCallError: Every model in the chain failed; the last failure is raised.
    """
    chain = [request.model, *(resolve(name) for name in request.model.fallbacks)]
    last_error: ModelCallError | None = None
    attempt_no = 0
    for index, spec in enumerate(chain):
        req = request if index == 0 else request.model_copy(update={"model": spec})
        estimate = estimate_cost_usd(spec, req)
        # Held for as long as every attempt may take, so a slow call never outlives it.
        ttl_s = spec.timeout_s * spec.retry.max_attempts + 60.0
        reservation = await _reserve(
            ledger,
            functools.partial(
                ledger.reserve,
                estimate,
                what=f"a call to model {spec.name!r}",
                tier=spec.tier,
                ttl_s=ttl_s,
            ),
        )

        async def one(
            _: int, spec: ModelSpec = spec, req: ModelRequest = req, estimate: float = estimate
        ) -> CallResult:
            nonlocal attempt_no
            attempt_no += 1
            started = time.perf_counter()
            try:
                try:
                    response = await asyncio.wait_for(client.complete(req), spec.timeout_s)
                except TimeoutError as exc:
                    msg = f"model {spec.name!r} did not answer within {spec.timeout_s} s"
                    raise ModelTimeout(msg, model=spec.name) from exc
                if not response.text.strip():
                    msg = (
                        f"model {spec.name!r} returned an empty answer "
                        f"(finish_reason={response.finish_reason!r})"
                    )
                    raise ModelResponseError(msg, model=spec.name)
            except ModelCallError as exc:
                report(Attempt(spec, attempt_no, req, None, estimate, 0.0, _ms(started), exc))
                raise
            cost = (
                response.cost_usd
                if response.cost_usd is not None
                else spec.cost_usd(response.usage.input_tokens, response.usage.output_tokens)
            )
            report(Attempt(spec, attempt_no, req, response, estimate, cost, _ms(started), None))
            return CallResult(response=response, model=spec, cost_usd=cost)

        try:
            result = await retry_async(spec.retry, one)
        except ModelCallError as exc:
            await _ledger_op(ledger, functools.partial(ledger.release, reservation))
            last_error = exc
            continue
        except BaseException:
            await _ledger_op(ledger, functools.partial(ledger.release, reservation))
            raise
        await _ledger_op(ledger, functools.partial(ledger.settle, reservation, result.cost_usd))
        return result
    assert last_error is not None
    if len(chain) > 1:
        tried = ", ".join(repr(s.name) for s in chain)
        msg = f"every model failed ({tried}); last error: {last_error}"
        raise type(last_error)(msg, model=last_error.model) from last_error
    raise last_error


async def _ledger_op(ledger: BudgetLedger, op: Callable[[], _T]) -> _T:
    """Run a ledger operation; off the event loop when it touches a database."""
    if getattr(ledger, "blocking", False):
        return await asyncio.to_thread(op)
    return op()


async def _reserve(ledger: BudgetLedger, op: Callable[[], Reservation]) -> Reservation:
    """Reserve on the ledger; a caller cancelled meanwhile (a timeout) leaks no reservation.

    A database reservation runs in a worker thread that completes even when the awaiting task
    is cancelled. Nothing would settle or release what it reserved, which would stay held on a
    shared key until its TTL, so on cancellation the reservation is awaited and released before
    the cancellation goes on (a second cancellation stops the wait; the TTL then frees it).
    """
    if not getattr(ledger, "blocking", False):
        return op()
    pending = asyncio.ensure_future(asyncio.to_thread(op))
    try:
        return await asyncio.shield(pending)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):  # a refused reservation holds nothing
            reservation = await pending
            await asyncio.to_thread(ledger.release, reservation)
        raise


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


async def complete_once(
    spec: ModelSpec,
    prompt: str | Sequence[Message],
    *,
    client: ModelClient | None = None,
    ledger: BudgetLedger | None = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
) -> str:
    """One call outside a run (onboarding, offline evaluation) and its text.

    The call gets the spec's timeout and retry policy and is reserved on `ledger` (a fresh,
    unbounded one by default; pass one to add up the spend). There is no registry outside a run,
    so the spec's fallbacks are not followed.

    Args:
        spec: The model; prices come from LiteLLM's map when the spec declares none.
        prompt: A user message, or the messages to send.
        client: Performs the call; default a `LiteLLMClient`.
        ledger: Budget ledger the call is reserved on and settled against.
        max_tokens: Output cap (default: the spec's).
        temperature: Sampling temperature (default: the provider's).

    Raises:
        ConfigurationError: No price is known for the model.
        ModelCallError: The call failed after its retries.
    """
    if client is None:
        from agentroute.models._litellm import LiteLLMClient

        client = LiteLLMClient()
    if not spec.priced:
        from agentroute.models._pricing import resolve_prices

        spec = resolve_prices(spec)
    priced = spec.model_copy(update={"fallbacks": ()}) if spec.fallbacks else spec
    messages = (Message(role="user", content=prompt),) if isinstance(prompt, str) else tuple(prompt)
    request = ModelRequest(
        model=priced, messages=messages, max_tokens=max_tokens, temperature=temperature
    )
    result = await call_model(
        request,
        client=client,
        resolve=lambda _name: priced,
        ledger=ledger if ledger is not None else BudgetLedger(),
        report=lambda _attempt: None,
    )
    return result.response.text
