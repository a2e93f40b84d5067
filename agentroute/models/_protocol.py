"""The `ModelClient` protocol: one LLM call, provider-agnostic."""

from __future__ import annotations

from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from agentroute.registry import ModelSpec

__all__ = ["Message", "ModelClient", "ModelRequest", "ModelResponse", "Usage"]


class Message(BaseModel):
    """One chat message."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: str


class ModelRequest(BaseModel):
    """What to send: the model (a registry spec) and the messages."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    model: ModelSpec
    messages: tuple[Message, ...]
    max_tokens: int | None = Field(default=None, gt=0)
    """Output cap; `None` = the spec's `max_output_tokens`."""
    temperature: float | None = Field(default=None, ge=0, le=2)
    response_format: dict[str, Any] | None = None
    """Provider `response_format` (e.g. a JSON schema), passed through."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    """Tags for the client (run id, agent); never sent as credentials."""

    @property
    def output_cap(self) -> int:
        """The output token cap that applies."""
        return self.max_tokens or self.model.max_output_tokens

    def prompt_chars(self) -> int:
        """Characters of all messages."""
        return sum(len(m.content) for m in self.messages)


class Usage(BaseModel):
    """Token counts of one call."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)


class ModelResponse(BaseModel):
    """The model's answer."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str
    usage: Usage = Usage()
    model_id: str = ""
    """The provider's model id as reported."""
    cost_usd: float | None = None
    """Cost reported by the client; `None` = computed from the spec's prices."""
    finish_reason: str | None = None


@runtime_checkable
class ModelClient(Protocol):
    """Makes one LLM call. Implementations raise `ModelCallError` subclasses, nothing else.

    Retries, fallbacks, budgets and tracing are applied around the client by the runtime, so a
    client only performs a single attempt.
    """

    async def complete(self, request: ModelRequest) -> ModelResponse:
        """Perform one call and return the answer."""
        ...
