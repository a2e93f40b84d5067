"""What exists: typed specs of agents, skills, models and tasks, and the `Registry`."""

from agentroute.registry._graph import GraphSpec, LimitsSpec, RouterSpec, SlotSpec
from agentroute.registry._registry import AgentFunction, Registry
from agentroute.registry._skill_files import parse_skill_file, read_skill_dir
from agentroute.registry._specs import (
    NAME_PATTERN,
    AgentSpec,
    ModelSpec,
    RetryPolicy,
    SkillSpec,
    TaskSpec,
)

__all__ = [
    "NAME_PATTERN",
    "AgentFunction",
    "AgentSpec",
    "GraphSpec",
    "LimitsSpec",
    "ModelSpec",
    "Registry",
    "RetryPolicy",
    "RouterSpec",
    "SkillSpec",
    "SlotSpec",
    "TaskSpec",
    "parse_skill_file",
    "read_skill_dir",
]
