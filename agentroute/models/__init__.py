"""LLM calls: the `ModelClient` protocol, the LiteLLM client, prices, budgets and retries.

Importing this package does not import LiteLLM; it is loaded on the first call or price lookup.
"""

from agentroute.models._budget import (
    Budget,
    BudgetLedger,
    BudgetSnapshot,
    Reservation,
    SharedBudgetLedger,
    estimate_cost_usd,
)
from agentroute.models._invoke import Attempt, CallResult, call_model
from agentroute.models._litellm import LiteLLMClient, missing_api_key
from agentroute.models._pricing import resolve_prices
from agentroute.models._protocol import Message, ModelClient, ModelRequest, ModelResponse, Usage

__all__ = [
    "Attempt",
    "Budget",
    "BudgetLedger",
    "BudgetSnapshot",
    "CallResult",
    "LiteLLMClient",
    "Message",
    "ModelClient",
    "ModelRequest",
    "ModelResponse",
    "Reservation",
    "SharedBudgetLedger",
    "Usage",
    "call_model",
    "estimate_cost_usd",
    "missing_api_key",
    "resolve_prices",
]
