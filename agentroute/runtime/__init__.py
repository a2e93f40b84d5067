"""How it runs: the `Router` facade over a LangGraph `StateGraph`, and what agents receive."""

from agentroute.runtime._context import AgentContext, AgentResult, SkillSet
from agentroute.runtime._recorder import add_capture_sink, remove_capture_sink
from agentroute.runtime._result import RunResult
from agentroute.runtime._router import Router

__all__ = [
    "AgentContext",
    "AgentResult",
    "Router",
    "RunResult",
    "SkillSet",
    "add_capture_sink",
    "remove_capture_sink",
]
