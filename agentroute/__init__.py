"""agentroute: embeddable multi-agent routing.

Register agents, skills and models in a `Registry`; a `Router` decides at every step who acts,
with which skills, on which model, under a budget; every decision goes to an append-only SQL
trace that can be listed, verified and replayed.

Importing this package is cheap: LangGraph, LiteLLM and SQLAlchemy load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from agentroute.errors import (
    AgentError,
    AgentRouteError,
    BudgetExceeded,
    ConfigurationError,
    ContentError,
    ModelCallError,
    RoutingError,
    RunError,
    StoreError,
)
from agentroute.models import Budget, Message, ModelClient
from agentroute.registry import (
    AgentSpec,
    GraphSpec,
    ModelSpec,
    Registry,
    RetryPolicy,
    SkillSpec,
    TaskSpec,
)
from agentroute.routing import (
    Candidate,
    Fallback,
    FirstMatch,
    JoinAnswers,
    Keywords,
    LearningStrategy,
    Length,
    Metadata,
    Outcome,
    Predicate,
    RefineStrategy,
    Regex,
    RouteDecision,
    RoutingContext,
    RoutingStrategy,
    Rule,
    Rules,
    Static,
)
from agentroute.stores import InMemoryTraceStore, TraceStore, open_store

if TYPE_CHECKING:
    from agentroute._replay import (
        RecordedModelClient,
        ReplayReport,
        StepDiff,
        UnobservedCall,
        replay,
        replay_sync,
    )
    from agentroute.models import LiteLLMClient
    from agentroute.routing._agent_scoring import choose_threshold
    from agentroute.routing._budget_switch import BudgetSwitch
    from agentroute.routing._description import DescriptionRouter
    from agentroute.routing._example import ExampleRouter
    from agentroute.routing._onboarding import describe_agent
    from agentroute.routing._reasoning import ReasoningRouter
    from agentroute.routing._refiner import Refiner
    from agentroute.routing.skills import RetrieveRerank
    from agentroute.runtime import AgentContext, AgentResult, Router, RunResult, SkillSet
    from agentroute.stores import SqlTraceStore

__version__ = "0.1.0"

__all__ = [
    "AgentContext",
    "AgentError",
    "AgentResult",
    "AgentRouteError",
    "AgentSpec",
    "Budget",
    "BudgetExceeded",
    "BudgetSwitch",
    "Candidate",
    "ConfigurationError",
    "ContentError",
    "DescriptionRouter",
    "ExampleRouter",
    "Fallback",
    "FirstMatch",
    "GraphSpec",
    "InMemoryTraceStore",
    "JoinAnswers",
    "Keywords",
    "LearningStrategy",
    "Length",
    "LiteLLMClient",
    "Message",
    "Metadata",
    "ModelCallError",
    "ModelClient",
    "ModelSpec",
    "Outcome",
    "Predicate",
    "ReasoningRouter",
    "RecordedModelClient",
    "RefineStrategy",
    "Refiner",
    "Regex",
    "Registry",
    "ReplayReport",
    "RetrieveRerank",
    "RetryPolicy",
    "RouteDecision",
    "Router",
    "RoutingContext",
    "RoutingError",
    "RoutingStrategy",
    "Rule",
    "Rules",
    "RunError",
    "RunResult",
    "SkillSet",
    "SkillSpec",
    "SqlTraceStore",
    "Static",
    "StepDiff",
    "StoreError",
    "TaskSpec",
    "TraceStore",
    "UnobservedCall",
    "__version__",
    "choose_threshold",
    "describe_agent",
    "open_store",
    "replay",
    "replay_sync",
]

# Names whose modules import heavy engines (LangGraph, LiteLLM, SQLAlchemy): loaded on first use.
_LAZY = {
    "AgentContext": "agentroute.runtime",
    "AgentResult": "agentroute.runtime",
    "Router": "agentroute.runtime",
    "RunResult": "agentroute.runtime",
    "SkillSet": "agentroute.runtime",
    "LiteLLMClient": "agentroute.models",
    "BudgetSwitch": "agentroute.routing._budget_switch",
    "RetrieveRerank": "agentroute.routing.skills",
    "ReasoningRouter": "agentroute.routing._reasoning",
    "Refiner": "agentroute.routing._refiner",
    "DescriptionRouter": "agentroute.routing._description",
    "ExampleRouter": "agentroute.routing._example",
    "describe_agent": "agentroute.routing._onboarding",
    "choose_threshold": "agentroute.routing._agent_scoring",
    "SqlTraceStore": "agentroute.stores",
    "replay": "agentroute._replay",
    "replay_sync": "agentroute._replay",
    "ReplayReport": "agentroute._replay",
    "StepDiff": "agentroute._replay",
    "RecordedModelClient": "agentroute._replay",
    "UnobservedCall": "agentroute._replay",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        msg = f"module 'agentroute' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
