"""`Refiner`: an LLM merges several agents' answers into one (TCAndon-Router's Refining Agent).

The refiner sees the request and each agent's answer under its id. It integrates complementary
answers, states conflicting points explicitly (never silently picks a side), and returns a
polite refusal when every agent failed. Its prompt and raw output go into the decision's
evidence; the model call itself is traced and budgeted like any other.

When the refiner raises (the model failed, or answered nothing), the runtime keeps the best
single answer and records the failure.
"""

from __future__ import annotations

from typing import Any, ClassVar

from agentroute.errors import ConfigurationError, ModelResponseError
from agentroute.routing._refine import RefineContext, RefineResult

__all__ = ["REFUSAL", "Refiner"]

REFUSAL = (
    "I'm sorry, I couldn't get an answer to your request right now. Please try again later, "
    "or rephrase it and I'll do my best to help."
)
"""What the user reads when every agent failed."""

INSTRUCTIONS = """\
You are the Refining Agent. Several agents answered the same user request. Write the single \
final answer for the user.
- If the answers are complementary, integrate them into one coherent answer, keeping every \
useful point.
- If they conflict, present each conflicting point and say explicitly that the sources \
disagree and how (never silently choose one side).
- Ignore agents that failed; if every answer is a failure or a refusal, reply with a short, \
polite refusal.
- Output only the final answer, without mentioning agents or this process."""


class Refiner:
    """Merges several answers with an LLM: integrate, surface conflicts, refuse politely.

    Example:
        ```python
        router = ar.Router(registry, agent=..., refiner=ar.Refiner(model="strong"))
        ```

    Args:
        model: Registry name of the refining model; `None` = the router's default model.
        skip_single: When only one agent answered, return its answer unchanged (no call).
        max_tokens: Output cap of the refining call.
        temperature: Sampling temperature.
        refusal: What to answer when every agent failed (no model call is made).
        instructions: Replaces the refining instructions.
    """

    name: ClassVar[str] = "llm"
    handles_failures: ClassVar[bool] = True
    """The runtime also calls this refiner when every agent failed (for the refusal)."""
    version: ClassVar[str] = "1"

    def __init__(
        self,
        model: str | None = None,
        *,
        skip_single: bool = True,
        max_tokens: int = 1024,
        temperature: float | None = 0.0,
        refusal: str = REFUSAL,
        instructions: str | None = None,
    ) -> None:
        self.model = model
        self.skip_single = skip_single
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.refusal = refusal
        self.instructions = instructions or INSTRUCTIONS

    def params(self) -> dict[str, Any]:
        """Parameters for the trace."""
        return {
            "model": self.model,
            "skip_single": self.skip_single,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }

    def build_prompt(self, ctx: RefineContext) -> str:
        """The refining prompt: instructions, the request, then each answer under its agent."""
        parts = [self.instructions, "", "# User request", ctx.task.strip(), ""]
        for agent, answer in ctx.answers.items():
            parts += [f"# The answer of {agent}", answer.strip(), ""]
        for agent, error in ctx.failures.items():
            parts += [f"# The answer of {agent}", f"(failed: {error})", ""]
        parts.append("# Final answer")
        return "\n".join(parts)

    async def refine(self, ctx: RefineContext) -> RefineResult:
        """Merge `ctx.answers` into one answer.

        Raises:
            ModelResponseError: The model answered nothing (the runtime then keeps the best
                single answer).
            ModelCallError: The refining call failed.
            ConfigurationError: No model access was given.
        """
        failed = list(ctx.failures)
        if not ctx.answers:
            return RefineResult(
                answer=self.refusal,
                reason=f"every agent failed ({len(failed)}); polite refusal",
                evidence={"refused": True, "failed": failed},
            )
        if len(ctx.answers) == 1 and self.skip_single:
            agent, answer = next(iter(ctx.answers.items()))
            return RefineResult(
                answer=answer,
                reason=f"only {agent!r} answered; not refined",
                evidence={"skipped": True, "agents": [agent], "failed": failed},
            )
        if ctx.complete is None:
            msg = "the Refiner needs model access (RefineContext.complete is None)"
            raise ConfigurationError(msg)
        prompt = self.build_prompt(ctx)
        raw = await ctx.complete(
            prompt, model=self.model, max_tokens=self.max_tokens, temperature=self.temperature
        )
        answer = (raw or "").strip()
        if not answer:
            msg = "the refining model returned an empty answer"
            raise ModelResponseError(msg, model=self.model or "default", run_id=ctx.run_id)
        return RefineResult(
            answer=answer,
            reason=f"merged {len(ctx.answers)} answers"
            + (f" ({len(failed)} agent(s) failed)" if failed else ""),
            evidence={
                "prompt": prompt,
                "raw_output": raw,
                "agents": list(ctx.answers),
                "failed": failed,
                "conflict": len(ctx.answers) > 1,
                "model": self.model,
            },
        )
