"""Test doubles for agentroute users: a scripted model client and trace capture.

```python
from agentroute.testing import ScriptedModelClient, capture_traces

client = ScriptedModelClient([(r"refund", "Refunds take 5-10 business days.")], default="OK")
with capture_traces() as records:
    router.run_sync("Where is my refund?")
assert any(r.kind == "decision" for r in records)
```
"""

from __future__ import annotations

import asyncio
import math
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from agentroute.errors import ModelCallError
from agentroute.models import ModelRequest, ModelResponse, Usage
from agentroute.runtime import add_capture_sink, remove_capture_sink
from agentroute.stores import TraceRecord

__all__ = ["ForbiddenModelClient", "ScriptedModelClient", "capture_traces", "count_tokens"]

Reply = str | Callable[[ModelRequest], str] | ModelCallError
Matcher = str | re.Pattern[str] | Callable[[ModelRequest], bool]


def count_tokens(text: str) -> int:
    """A realistic token count without a tokenizer: about four characters per token."""
    return max(1, math.ceil(len(text) / 4)) if text else 0


class ScriptedModelClient:
    """A `ModelClient` that answers by rule, with realistic token usage. No network.

    Rules are `(matcher, reply)` pairs tried in order against the request; a matcher is a regex
    (searched in the last user message), or a function of the request. A reply is a string, a
    function of the request, or a `ModelCallError` instance to raise (to script failures).
    Cost is left to the runtime, which prices the usage with the model's spec, as for a real
    provider.

    Args:
        rules: `(matcher, reply)` pairs.
        default: Reply when no rule matches; `None` raises `LookupError` (a test bug).
        latency_s: Simulated latency per call.

    Attributes:
        requests: Every request received, in order (thread-safe).
    """

    def __init__(
        self,
        rules: Sequence[tuple[Matcher, Reply]] = (),
        *,
        default: Reply | None = "OK",
        latency_s: float = 0.0,
    ) -> None:
        self.rules = [(self._matcher(m), r) for m, r in rules]
        self.default = default
        self.latency_s = latency_s
        self.requests: list[ModelRequest] = []
        self._lock = threading.Lock()

    @staticmethod
    def _matcher(m: Matcher) -> Callable[[ModelRequest], bool]:
        if callable(m) and not isinstance(m, re.Pattern):
            return m
        pattern = m if isinstance(m, re.Pattern) else re.compile(m, re.IGNORECASE)

        def match(request: ModelRequest) -> bool:
            users = [msg.content for msg in request.messages if msg.role == "user"]
            return bool(users) and pattern.search(users[-1]) is not None

        return match

    async def complete(self, request: ModelRequest) -> ModelResponse:
        """Answer one request by the first matching rule."""
        with self._lock:
            self.requests.append(request)
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        reply: Reply | None = next((r for m, r in self.rules if m(request)), self.default)
        if reply is None:
            last = request.messages[-1].content[:80] if request.messages else ""
            msg = f"ScriptedModelClient has no rule for {last!r} and no default"
            raise LookupError(msg)
        if isinstance(reply, ModelCallError):
            raise reply
        text = reply(request) if callable(reply) else reply
        prompt = sum(count_tokens(m.content) + 4 for m in request.messages)
        return ModelResponse(
            text=text,
            usage=Usage(input_tokens=prompt, output_tokens=count_tokens(text)),
            model_id=request.model.model,
            finish_reason="stop",
        )

    @property
    def calls(self) -> int:
        """How many requests were received."""
        return len(self.requests)


class ForbiddenModelClient:
    """A `ModelClient` that fails the test if it is ever called (e.g. during replay)."""

    def __init__(self) -> None:
        self.calls = 0

    async def complete(self, request: ModelRequest) -> ModelResponse:
        """Raise `AssertionError`: no model call was allowed."""
        self.calls += 1
        msg = f"a model call was made to {request.model.name!r} where none is allowed"
        raise AssertionError(msg)


@contextmanager
def capture_traces() -> Iterator[list[TraceRecord]]:
    """Collect every record that runs started inside the block write, in order.

    Works with any store; the records are also written to the store as usual.
    """
    records: list[Any] = []
    lock = threading.Lock()

    def sink(record: TraceRecord) -> None:
        with lock:
            records.append(record)

    token = add_capture_sink(sink)
    try:
        yield records
    finally:
        remove_capture_sink(token)
