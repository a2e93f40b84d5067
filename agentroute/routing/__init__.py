"""Who acts, with what, on which model: the routing protocol and the built-in strategies.

Strategies that need numpy or embeddings (`BudgetSwitch`, `RetrieveRerank`, `ReasoningRouter`,
`DescriptionRouter`, `ExampleRouter`, `AntColony`, ...) load on first use.
"""

import importlib
from typing import TYPE_CHECKING, Any

from agentroute.routing._catalog import (
    build_refiner,
    build_strategy,
    register_strategy,
    strategy_names,
)
from agentroute.routing._composite import Fallback, FirstMatch, strategy_tree
from agentroute.routing._describe import describe_strategy
from agentroute.routing._protocol import (
    BudgetView,
    Candidate,
    Complete,
    LearningStrategy,
    Outcome,
    RouteDecision,
    RoutingContext,
    RoutingStrategy,
    Slot,
    StepView,
)
from agentroute.routing._refine import JoinAnswers, RefineContext, RefineResult, RefineStrategy
from agentroute.routing._rules import Rule, Rules
from agentroute.routing._signals import (
    AllOf,
    AnyOf,
    Keywords,
    Length,
    Metadata,
    Not,
    Predicate,
    Regex,
    Signal,
    SignalResult,
    signal_from_config,
)
from agentroute.routing._static import Static

if TYPE_CHECKING:
    from agentroute.routing._agent_scoring import choose_threshold
    from agentroute.routing._budget_switch import BudgetSwitch, CascadeResult
    from agentroute.routing._description import DescriptionRouter
    from agentroute.routing._difficulty import (
        DifficultyScore,
        DifficultyScorer,
        EnsembleScorer,
        KnnScorer,
        LogisticScorer,
    )
    from agentroute.routing._difficulty_eval import calibrate_threshold, cheap_strong_curve
    from agentroute.routing._example import ExampleRouter
    from agentroute.routing._onboarding import describe_agent, describe_agent_sync
    from agentroute.routing._reasoning import ReasoningRouter, RouterOutput, parse_router_output
    from agentroute.routing._refiner import Refiner

# Heavy names → the module that defines them (imported on first attribute access).
_LAZY: dict[str, str] = {
    "BudgetSwitch": "agentroute.routing._budget_switch",
    "CascadeResult": "agentroute.routing._budget_switch",
    "DifficultyScore": "agentroute.routing._difficulty",
    "DifficultyScorer": "agentroute.routing._difficulty",
    "EnsembleScorer": "agentroute.routing._difficulty",
    "KnnScorer": "agentroute.routing._difficulty",
    "LogisticScorer": "agentroute.routing._difficulty",
    "calibrate_threshold": "agentroute.routing._difficulty_eval",
    "cheap_strong_curve": "agentroute.routing._difficulty_eval",
    "ReasoningRouter": "agentroute.routing._reasoning",
    "RouterOutput": "agentroute.routing._reasoning",
    "parse_router_output": "agentroute.routing._reasoning",
    "Refiner": "agentroute.routing._refiner",
    "DescriptionRouter": "agentroute.routing._description",
    "ExampleRouter": "agentroute.routing._example",
    "describe_agent": "agentroute.routing._onboarding",
    "describe_agent_sync": "agentroute.routing._onboarding",
    "choose_threshold": "agentroute.routing._agent_scoring",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        msg = f"module 'agentroute.routing' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "AllOf",
    "AnyOf",
    "BudgetSwitch",
    "BudgetView",
    "Candidate",
    "CascadeResult",
    "Complete",
    "DescriptionRouter",
    "DifficultyScore",
    "DifficultyScorer",
    "EnsembleScorer",
    "ExampleRouter",
    "Fallback",
    "FirstMatch",
    "JoinAnswers",
    "Keywords",
    "KnnScorer",
    "LearningStrategy",
    "Length",
    "LogisticScorer",
    "Metadata",
    "Not",
    "Outcome",
    "Predicate",
    "ReasoningRouter",
    "RefineContext",
    "RefineResult",
    "RefineStrategy",
    "Refiner",
    "Regex",
    "RouteDecision",
    "RouterOutput",
    "RoutingContext",
    "RoutingStrategy",
    "Rule",
    "Rules",
    "Signal",
    "SignalResult",
    "Slot",
    "Static",
    "StepView",
    "build_refiner",
    "build_strategy",
    "calibrate_threshold",
    "cheap_strong_curve",
    "choose_threshold",
    "describe_agent",
    "describe_agent_sync",
    "describe_strategy",
    "parse_router_output",
    "register_strategy",
    "signal_from_config",
    "strategy_names",
    "strategy_tree",
]
