"""The exceptions agentroute raises.

Every exception derives from one root, so `except AgentRouteError` catches all of them. Developer
mistakes (bad specs, unknown names, malformed content) are kept apart from failures of a run:

```text
AgentRouteError
├── ConfigurationError          a definition is wrong; fix the code or the content file
│   └── ContentError            a SKILL.md or graph YAML file is malformed (names the file)
├── MissingExtraError           an optional dependency is not installed (also an ImportError;
│                               the message names the `pip install` to run)
├── RunError                    a run failed or was stopped (carries run_id when known)
│   ├── AgentError              an agent function raised or timed out
│   ├── RoutingError            a strategy raised or returned an invalid decision
│   ├── BudgetExceeded          a model call would overspend the run's budget
│   ├── ModelCallError          a model call failed after retries and fallbacks
│   │   ├── ModelTimeout
│   │   ├── ModelRateLimited
│   │   ├── ModelAuthError
│   │   ├── ModelBadRequest
│   │   ├── ModelUnavailable
│   │   └── ModelResponseError  the model answered with nothing usable
│   └── ReplayError             a replay could not be carried out
└── StoreError                  the trace store failed
    ├── StoreUnavailable        locked or unreachable; nothing already committed is lost
    ├── RunNotFound
    ├── RunNotFinished          feedback on a run that has no end record yet
    └── StateConflict           a learned-state write lost an optimistic-concurrency race
```

Third-party exceptions (LiteLLM, SQLAlchemy, LangGraph) are translated at one boundary each and
chained with `raise ... from exc`. Constructors never log.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "AgentError",
    "AgentRouteError",
    "BudgetExceeded",
    "ConfigurationError",
    "ContentError",
    "MissingExtraError",
    "ModelAuthError",
    "ModelBadRequest",
    "ModelCallError",
    "ModelRateLimited",
    "ModelResponseError",
    "ModelTimeout",
    "ModelUnavailable",
    "ReplayError",
    "RoutingError",
    "RunError",
    "RunNotFinished",
    "RunNotFound",
    "StateConflict",
    "StoreError",
    "StoreUnavailable",
    "did_you_mean",
]


class AgentRouteError(Exception):
    """Root of every exception raised by agentroute."""


class ConfigurationError(AgentRouteError):
    """A definition is wrong: an unknown or duplicate name, an invalid spec, a bad parameter."""


class ContentError(ConfigurationError):
    """A content file (SKILL.md, graph YAML) is malformed.

    Attributes:
        path: The offending file.
    """

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


class MissingExtraError(AgentRouteError, ImportError):
    """An optional dependency is not installed; the message names the `pip install` to run.

    It is an `ImportError` too, so `except ImportError` around an optional feature still works.
    """


class RunError(AgentRouteError):
    """A run failed or was stopped.

    Attributes:
        run_id: The run, when known; its trace holds what happened up to the failure.
    """

    def __init__(self, message: str, *, run_id: str | None = None) -> None:
        super().__init__(message)
        self.run_id = run_id


class AgentError(RunError):
    """An agent function raised or timed out.

    Attributes:
        agent: The agent that failed.
        answer: What the run could still say (e.g. a refiner's polite refusal), if anything.
    """

    def __init__(
        self, message: str, *, agent: str, run_id: str | None = None, answer: str | None = None
    ) -> None:
        super().__init__(message, run_id=run_id)
        self.agent = agent
        self.answer = answer


class RoutingError(RunError):
    """A routing strategy raised or returned a decision that does not fit its slot."""


class BudgetExceeded(RunError):
    """A model call would make the run spend more than its budget allows.

    Attributes:
        limit_usd: The budget.
        spent_usd: Settled spend so far.
        reserved_usd: Spend reserved by calls in flight.
        requested_usd: The estimate of the call that was refused.
    """

    def __init__(
        self,
        message: str,
        *,
        limit_usd: float,
        spent_usd: float,
        reserved_usd: float,
        requested_usd: float,
        run_id: str | None = None,
    ) -> None:
        super().__init__(message, run_id=run_id)
        self.limit_usd = limit_usd
        self.spent_usd = spent_usd
        self.reserved_usd = reserved_usd
        self.requested_usd = requested_usd


class ModelCallError(RunError):
    """A model call failed after its retries and fallbacks.

    Attributes:
        model: The registry name of the model (the last one tried).
        retryable: Whether the failure is worth retrying.
    """

    retryable: bool = False

    def __init__(self, message: str, *, model: str, run_id: str | None = None) -> None:
        super().__init__(message, run_id=run_id)
        self.model = model


class ModelTimeout(ModelCallError):
    """The provider did not answer in time."""

    retryable = True


class ModelRateLimited(ModelCallError):
    """The provider rate-limited the call."""

    retryable = True


class ModelUnavailable(ModelCallError):
    """The provider failed (5xx) or could not be reached."""

    retryable = True


class ModelAuthError(ModelCallError):
    """The provider rejected the credentials: set the provider's API key."""


class ModelBadRequest(ModelCallError):
    """The provider rejected the request (unknown model, context too long, bad parameter)."""


class ModelResponseError(ModelCallError):
    """The model answered with nothing usable (empty or malformed)."""

    retryable = True


class ReplayError(RunError):
    """A replay could not be carried out (the run is unknown or its trace is not replayable)."""


class StoreError(AgentRouteError):
    """The trace store failed."""


class StoreUnavailable(StoreError):
    """The database is locked or unreachable. Records not yet written stay buffered."""


class RunNotFound(StoreError):
    """No run with that id is in the store."""


class RunNotFinished(StoreError):
    """Feedback was given on a run that has not ended (no end record in the store yet).

    Feedback is chained after a run's own records; recorded mid-run, it would take a sequence
    number the run itself still needs.
    """


class StateConflict(StoreError):
    """A learned-state write expected a version that another writer already replaced."""


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """Return a ` — did you mean 'x'?` hint for a misspelt name, or a list of known names.

    Args:
        name: The name that was not found.
        known: The names that exist.

    Returns:
        A suffix for an error message (starting with a space), never empty.
    """
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        return f" — did you mean {close[0]!r}?"
    if not known:
        return " — none are registered yet."
    shown = ", ".join(repr(k) for k in known[:10])
    more = f" and {len(known) - 10} more" if len(known) > 10 else ""
    return f" — known: {shown}{more}."
