"""`Static`: always the same choice."""

from __future__ import annotations

from typing import Any, ClassVar

from agentroute.errors import ConfigurationError
from agentroute.routing._protocol import RouteDecision, RoutingContext

__all__ = ["Static"]


class Static:
    """Always choose the same thing, whatever the slot.

    - agent slot: `Static("billing")` routes every run to `billing` (several names fan out);
    - skills slot: `Static("refund-policy", "invoice-lookup")` gives those skills;
    - model slot: `Static("cheap")` runs every branch on `cheap`.

    Args:
        *choices: Agent names, skill ids, or one model name.
        then: Agent slot: `finish` after the agents answer (default) or `route` again.
    """

    name: ClassVar[str] = "static"

    def __init__(self, *choices: str, then: str = "finish") -> None:
        if then not in ("finish", "route"):
            msg = f"Static(then={then!r}): use 'finish' or 'route'"
            raise ConfigurationError(msg)
        for choice in choices:
            if not isinstance(choice, str):
                msg = (
                    f"Static takes names (strings) as separate arguments, e.g. "
                    f"Static('billing', 'shipping') (in a graph: choices: [billing, shipping]); "
                    f"got {choice!r}"
                )
                raise ConfigurationError(msg)
            if not choice.strip():
                msg = f"Static has an empty name in {list(choices)!r}"
                raise ConfigurationError(msg)
        self.choices = tuple(choices)
        self.then = then

    def fixed_choices(self) -> tuple[str, ...]:
        """The names it chooses (checked against the registry at `Router.compile()`)."""
        return self.choices

    def params(self) -> dict[str, Any]:
        """Parameters for the trace."""
        return {"choices": list(self.choices), "then": self.then}

    async def route(self, ctx: RoutingContext) -> RouteDecision:
        """Return the fixed choice for `ctx.slot`."""
        if ctx.slot == "skills":
            return RouteDecision.with_skills(*self.choices, reason="static choice")
        if ctx.slot == "model":
            if len(self.choices) != 1:
                msg = f"Static for the model slot takes exactly one model, got {self.choices}"
                raise ConfigurationError(msg)
            return RouteDecision.with_model(self.choices[0], reason="static choice")
        if not self.choices:
            return RouteDecision.abstain("Static() has no agents")
        return RouteDecision.to(
            *self.choices,
            then="route" if self.then == "route" else "finish",
            reason="static choice",
        )
