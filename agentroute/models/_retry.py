"""Retry policies (data) turned into tenacity retries. The only place tenacity is used."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from agentroute.errors import ModelCallError
from agentroute.registry import RetryPolicy

__all__ = ["retry_async"]

T = TypeVar("T")


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, ModelCallError) and exc.retryable


async def retry_async(
    policy: RetryPolicy,
    attempt: Callable[[int], Awaitable[T]],
    *,
    retry_on: Callable[[BaseException], bool] = _retryable,
) -> T:
    """Call `attempt(n)` (n = 1, 2, ...) until it succeeds or the policy gives up.

    Only exceptions for which `retry_on` is true are retried; the last one is re-raised as is.
    """
    if policy.max_attempts <= 1:  # the common case for agents: no retry machinery at all
        return await attempt(1)
    # initial * multiplier**(n-1), capped; jitter adds up to half the initial wait.
    wait: Any = wait_exponential(
        multiplier=policy.initial_backoff_s,
        max=policy.max_backoff_s,
        exp_base=policy.multiplier,
    )
    if policy.jitter and policy.initial_backoff_s > 0:
        wait = wait + wait_random(0, policy.initial_backoff_s / 2)
    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.max_attempts),
        wait=wait,
        retry=retry_if_exception(retry_on),
        reraise=True,
    )
    async for state in retrying:
        with state:
            return await attempt(state.retry_state.attempt_number)
    raise AssertionError("unreachable: tenacity either returns or re-raises")  # pragma: no cover
