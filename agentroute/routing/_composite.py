"""Composite strategies: strategies made of strategies, implementing the same protocol."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from agentroute.errors import ConfigurationError
from agentroute.routing._describe import describe_strategy
from agentroute.routing._protocol import RouteDecision, RoutingContext, RoutingStrategy

__all__ = ["Fallback", "FirstMatch", "strategy_tree"]


class FirstMatch:
    """Ask each strategy in turn; the first that does not abstain decides.

    Exceptions propagate (use `Fallback` to survive them). The evidence lists every strategy
    asked and what it said.

    The router gives the inner strategies its lifecycle as it would in a slot of their own:
    each is bound to the trace store and validated at `Router.compile()`, is closed with the
    router, and, if it learns, is given every finished run (see `strategy_tree`). That includes
    runs another inner strategy routed: an `AntColony` behind `Rules` learns from the paths the
    rules chose too, which are evidence about those agents all the same.
    """

    name: ClassVar[str] = "first-match"
    _catch: ClassVar[bool] = False

    def __init__(self, strategies: Sequence[RoutingStrategy]) -> None:
        if not strategies:
            msg = f"{type(self).__name__} needs at least one strategy"
            raise ConfigurationError(msg)
        self.strategies = tuple(strategies)

    def params(self) -> dict[str, Any]:
        """Parameters for the trace: the inner strategies' descriptions."""
        return {"strategies": [describe_strategy(s) for s in self.strategies]}

    async def route(self, ctx: RoutingContext) -> RouteDecision:
        """Try the strategies in order."""
        tried: list[dict[str, Any]] = []
        for strategy in self.strategies:
            label = describe_strategy(strategy)["strategy"]
            try:
                decision = await strategy.route(ctx)
            except Exception as exc:
                if not self._catch:
                    raise
                tried.append({"strategy": label, "outcome": "error", "error": _err(exc)})
                continue
            tried.append(
                {"strategy": label, "outcome": decision.outcome, "reason": decision.reason}
            )
            if decision.outcome != "abstain":
                return decision.model_copy(
                    update={
                        "strategy": decision.strategy or label,
                        "evidence": {**decision.evidence, "tried": tried},
                    }
                )
        return RouteDecision.abstain(
            f"all {len(tried)} strategies abstained or failed", tried=tried
        )


class Fallback(FirstMatch):
    """Like `FirstMatch`, but a strategy that raises is also skipped (and recorded)."""

    name: ClassVar[str] = "fallback"
    _catch: ClassVar[bool] = True


def strategy_tree(strategy: RoutingStrategy | None) -> list[RoutingStrategy]:
    """`strategy` and, depth first, every strategy nested in it by `FirstMatch`/`Fallback`.

    The router walks this list for its lifecycle hooks (`bind_store`, `validate`, `learn`,
    `close`), calling each object once even when it appears twice, so a learning strategy
    inside a composite learns from every finished run, whichever inner strategy routed it.
    """
    if strategy is None:
        return []
    out = [strategy]
    if isinstance(strategy, FirstMatch):
        for inner in strategy.strategies:
            out.extend(strategy_tree(inner))
    return out


def _err(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
