"""LLM calls: the `ModelClient` protocol, the LiteLLM client, prices, budgets and retries.

Importing this package does not import LiteLLM; it is loaded on the first call or price lookup.
"""

from typing import TYPE_CHECKING, Any

from agentroute.models._budget import (
    Budget,
    BudgetLedger,
    BudgetSnapshot,
    Reservation,
    SharedBudgetLedger,
    estimate_cost_usd,
)
from agentroute.models._invoke import Attempt, CallResult, call_model, complete_once
from agentroute.models._litellm import LiteLLMClient, missing_api_key
from agentroute.models._pricing import resolve_prices
from agentroute.models._protocol import Message, ModelClient, ModelRequest, ModelResponse, Usage

if TYPE_CHECKING:
    from agentroute.models._embedding import LiteLLMEmbedder


def __getattr__(name: str) -> Any:
    # LiteLLMEmbedder needs numpy; load it on first use so `import agentroute` stays light.
    if name == "LiteLLMEmbedder":
        from agentroute.models._embedding import LiteLLMEmbedder

        return LiteLLMEmbedder
    msg = f"module 'agentroute.models' has no attribute {name!r}"
    raise AttributeError(msg)


__all__ = [
    "Attempt",
    "Budget",
    "BudgetLedger",
    "BudgetSnapshot",
    "CallResult",
    "LiteLLMClient",
    "LiteLLMEmbedder",
    "Message",
    "ModelClient",
    "ModelRequest",
    "ModelResponse",
    "Reservation",
    "SharedBudgetLedger",
    "Usage",
    "call_model",
    "complete_once",
    "estimate_cost_usd",
    "missing_api_key",
    "resolve_prices",
]
