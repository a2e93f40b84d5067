"""What happened: append-only, hash-chained run traces and versioned learned state."""

from typing import TYPE_CHECKING

from agentroute.stores._base import (
    BudgetKeyStatus,
    RunSummary,
    RunTrace,
    TraceStore,
    VerifyReport,
    verify_chain,
)
from agentroute.stores._memory import InMemoryTraceStore
from agentroute.stores._open import DEFAULT_STORE_URL, open_store
from agentroute.stores._records import (
    GENESIS_HASH,
    AgentOutputRecord,
    CandidateRecord,
    DecisionRecord,
    FeedbackRecord,
    ModelCallRecord,
    RunEndRecord,
    RunRecord,
    RunStatus,
    StateRecord,
    TraceRecord,
    chain_hash,
)

if TYPE_CHECKING:
    from agentroute.stores._sql import SqlTraceStore, ledger_schema_sql

__all__ = [
    "DEFAULT_STORE_URL",
    "GENESIS_HASH",
    "AgentOutputRecord",
    "BudgetKeyStatus",
    "CandidateRecord",
    "DecisionRecord",
    "FeedbackRecord",
    "InMemoryTraceStore",
    "ModelCallRecord",
    "RunEndRecord",
    "RunRecord",
    "RunStatus",
    "RunSummary",
    "RunTrace",
    "SqlTraceStore",
    "StateRecord",
    "TraceRecord",
    "TraceStore",
    "VerifyReport",
    "chain_hash",
    "ledger_schema_sql",
    "open_store",
    "verify_chain",
]


def __getattr__(name: str) -> object:
    # SqlTraceStore pulls in sqlmodel/SQLAlchemy (slow); load it on first use.
    if name in ("SqlTraceStore", "ledger_schema_sql"):
        from agentroute.stores import _sql

        return getattr(_sql, name)
    raise AttributeError(name)
