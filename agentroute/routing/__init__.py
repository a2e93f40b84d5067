"""Who acts, with what, on which model: the routing protocol and the built-in strategies."""

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

__all__ = [
    "AllOf",
    "AnyOf",
    "BudgetView",
    "Candidate",
    "Complete",
    "Fallback",
    "FirstMatch",
    "JoinAnswers",
    "Keywords",
    "LearningStrategy",
    "Length",
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
    "describe_strategy",
    "register_strategy",
    "signal_from_config",
    "strategy_names",
]
