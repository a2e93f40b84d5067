"""Typed, frozen specifications of what exists: agents, skills, models, tasks, retry policies."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agentroute._hashing import content_hash

__all__ = [
    "NAME_PATTERN",
    "AgentSpec",
    "ModelSpec",
    "RetryPolicy",
    "SkillSpec",
    "TaskSpec",
]

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$"
"""Names of agents, models, skills and tasks: letters, digits, `_`, `.`, `-`; at most 128."""

Name = Annotated[str, Field(pattern=NAME_PATTERN)]

_SECRET_KEYS = re.compile(r"(api_?key|secret|password|token|authorization)", re.IGNORECASE)


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class RetryPolicy(_Spec):
    """How often and how patiently to retry a failed call. Data only; the engine is private.

    Only retryable failures are retried (timeouts, rate limits, unavailable providers, empty or
    malformed answers); an authentication error or a bad request fails at once.
    """

    max_attempts: int = Field(default=3, ge=1, le=20)
    """Attempts in all, the first included (1 = no retry)."""
    initial_backoff_s: float = Field(default=0.5, ge=0)
    """Wait before the second attempt."""
    max_backoff_s: float = Field(default=8.0, ge=0)
    """Upper bound of any single wait."""
    multiplier: float = Field(default=2.0, ge=1)
    """Growth of the wait between attempts."""
    jitter: bool = True
    """Add up to 50% random jitter to each wait (spreads out retries of concurrent runs)."""


class ModelSpec(_Spec):
    """An LLM the router may choose, addressed by its LiteLLM model id.

    Prices are US dollars per million tokens. Leave them unset to take them from LiteLLM's cost
    map when the router is compiled; a model with no price anywhere is refused rather than
    treated as free.
    """

    # A refused secret in `params` must not be echoed back by pydantic's error message (the
    # ValidationError is chained onto the ConfigurationError and would reach tracebacks/logs).
    model_config = ConfigDict(
        frozen=True, extra="forbid", str_strip_whitespace=True, hide_input_in_errors=True
    )

    name: Name
    """Registry name, used by strategies and agents (`"cheap"`, `"strong"`)."""
    model: str = Field(min_length=1)
    """LiteLLM model id, e.g. `"openai/gpt-4o-mini"` or `"ollama/llama3.1"`."""
    tier: str = Field(default="default", min_length=1, pattern=r"^[a-z0-9_-]+$")
    """Cost tier such as `cheap` or `strong`; the model slot routes between tiers."""
    input_price_per_mtok: float | None = Field(default=None, ge=0)
    """USD per million input tokens; `None` = from LiteLLM's cost map."""
    output_price_per_mtok: float | None = Field(default=None, ge=0)
    """USD per million output tokens; `None` = from LiteLLM's cost map."""
    context_window: int | None = Field(default=None, gt=0)
    """Input token limit; `None` = from LiteLLM's map when known."""
    max_output_tokens: int = Field(default=1024, gt=0)
    """Output cap sent with every call; also bounds the cost reserved before a call."""
    timeout_s: float = Field(default=60.0, gt=0)
    """Per-attempt timeout."""
    fallbacks: tuple[Name, ...] = ()
    """Registry names of models to try, in order, when this one fails after its retries."""
    retry: RetryPolicy = RetryPolicy()
    """Retry policy for calls to this model."""
    api_key_env: str | None = None
    """Name of the environment variable holding the API key, when not the provider's default."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Extra keyword arguments for the provider call (e.g. `api_base`, `temperature`)."""

    @field_validator("params")
    @classmethod
    def _no_secrets_in_params(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if _SECRET_KEYS.search(key):
                msg = (
                    f"params[{key!r}] looks like a secret; secrets never go into specs (specs are "
                    "hashed and traced). Put the key in an environment variable and pass "
                    "api_key_env='THAT_VARIABLE'."
                )
                raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _fallbacks_exclude_self(self) -> ModelSpec:
        if self.name in self.fallbacks:
            msg = f"model {self.name!r} lists itself in fallbacks; remove it"
            raise ValueError(msg)
        return self

    @property
    def priced(self) -> bool:
        """Whether both prices are set on the spec."""
        return self.input_price_per_mtok is not None and self.output_price_per_mtok is not None

    def cost_usd(self, input_tokens: int, output_tokens: int) -> float:
        """Return the cost of a call with these token counts, from the spec's prices.

        Raises:
            ValueError: When the spec carries no prices (resolve them first).
        """
        if self.input_price_per_mtok is None or self.output_price_per_mtok is None:
            msg = f"model {self.name!r} has no prices; resolve them before computing cost"
            raise ValueError(msg)
        return (
            input_tokens * self.input_price_per_mtok + output_tokens * self.output_price_per_mtok
        ) / 1_000_000


class SkillSpec(_Spec):
    """A skill: instructions an agent may take into its context. The body is kept whole."""

    id: Name
    """Stable id; for a SKILL.md file, its directory name."""
    name: str = Field(min_length=1)
    """Human-readable name."""
    description: str = Field(min_length=1)
    """What the skill covers and when to use it; routers read this."""
    body: str = ""
    """The full Markdown body, kept whole."""
    tags: tuple[str, ...] = ()
    """Free-form labels."""
    version: str = "1"
    """Author's version label."""
    source: str | None = None
    """Where the skill was loaded from (a path), if from a file."""

    @property
    def content_hash(self) -> str:
        """SHA-256 of everything that defines the skill (not where it came from)."""
        return content_hash(self.model_dump(exclude={"source"}))


class TaskSpec(_Spec):
    """A task type of the routing taxonomy, with example utterances."""

    name: Name
    """Task type name, e.g. `"billing"`."""
    description: str = ""
    """What requests of this type look like."""
    examples: tuple[str, ...] = ()
    """Example requests of this type."""


class AgentSpec(_Spec):
    """An agent the router may choose. The function itself lives in the registry, not here."""

    name: Name
    """Registry name."""
    description: str = Field(min_length=1)
    """What the agent does; from the function's docstring by default. Routers read this."""
    skills: tuple[Name, ...] | None = None
    """Skill ids this agent may receive; `None` lets the skills slot pick from all skills."""
    tags: tuple[str, ...] = ()
    """Free-form labels."""
    tier: str | None = None
    """Default model tier when no model strategy is set."""
    model: Name | None = None
    """Default model (registry name) when no model strategy is set; wins over `tier`."""
    stage: int | None = Field(default=None, ge=0)
    """Stage of a layered agent graph (0 = first)."""
    timeout_s: float | None = Field(default=None, gt=0)
    """Wall-clock limit of one invocation; `None` = no limit."""
    retry: RetryPolicy = RetryPolicy(max_attempts=1)
    """Retries of the agent function when it raises (default: none)."""
    examples: tuple[str, ...] = ()
    """Example requests this agent should handle (for example-based routers)."""
    function: str = ""
    """Qualified name of the Python function, for the trace."""
    kind: Literal["function", "out_of_scope"] = "function"
    """`out_of_scope` marks the handler used when no agent fits."""
