"""Ant-colony routing (AMRO-S): pheromone paths over a layered agent graph.

`AntColony` is the agent-slot strategy; the rest are its parts, usable on their own:
the `LayeredGraph`, intent models returning a task `Mixture`, the versioned `PheromoneBook`,
and the asynchronous `LearningWorker` with its judges.
"""

from agentroute.routing.colony._colony import AntColony, Choice
from agentroute.routing.colony._graph import START, Edge, LayeredGraph, edge_key
from agentroute.routing.colony._intent import (
    DEFAULT_TASK,
    EmbeddingIntent,
    IntentModel,
    LLMIntent,
    Mixture,
    OnlineClusterIntent,
    check_mixture,
    default_embedder,
)
from agentroute.routing.colony._learner import (
    Judge,
    LearningError,
    LearningWorker,
    LLMJudge,
    Trajectory,
    WarmUpRun,
)
from agentroute.routing.colony._pheromones import (
    INDEX_KEY,
    PheromoneBook,
    PheromoneDiff,
    PheromoneState,
    PheromoneUpdate,
    apply_updates,
)

__all__ = [
    "DEFAULT_TASK",
    "INDEX_KEY",
    "START",
    "AntColony",
    "Choice",
    "Edge",
    "EmbeddingIntent",
    "IntentModel",
    "Judge",
    "LLMIntent",
    "LLMJudge",
    "LayeredGraph",
    "LearningError",
    "LearningWorker",
    "Mixture",
    "OnlineClusterIntent",
    "PheromoneBook",
    "PheromoneDiff",
    "PheromoneState",
    "PheromoneUpdate",
    "Trajectory",
    "WarmUpRun",
    "apply_updates",
    "check_mixture",
    "default_embedder",
    "edge_key",
]
