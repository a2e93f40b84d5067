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
from agentroute.routing._composite import Fallback, FirstMatch
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
    from agentroute.routing._budget_switch import BudgetSwitch, CascadeResult
    from agentroute.routing._difficulty import (
        DifficultyScore,
        DifficultyScorer,
        EnsembleScorer,
        KnnScorer,
        LogisticScorer,
    )
    from agentroute.routing._difficulty_eval import calibrate_threshold, cheap_strong_curve

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
    "DifficultyScore",
    "DifficultyScorer",
    "EnsembleScorer",
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
    "RefineContext",
    "RefineResult",
    "RefineStrategy",
    "Regex",
    "RouteDecision",
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
    "describe_strategy",
    "register_strategy",
    "signal_from_config",
    "strategy_names",
]
