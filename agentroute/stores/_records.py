"""What a run leaves behind: append-only, hash-chained records.

Every record of a run carries `run_id`, a per-run sequence number `seq` (0 for the run's start,
then one more per record), the `prev_hash` of the record before it and its own `hash`, the
SHA-256 of `prev_hash` and its canonical JSON. Editing or deleting any row breaks the chain,
which `TraceStore.verify` detects. Learned state (`StateRecord`) is versioned, not chained.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from types import UnionType
from typing import Annotated, Any, Literal, Self, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from agentroute._hashing import canonical_json, compact_json, sha256_hex

__all__ = [
    "GENESIS_HASH",
    "AgentOutputRecord",
    "CandidateRecord",
    "DecisionRecord",
    "FeedbackRecord",
    "ModelCallRecord",
    "RunEndRecord",
    "RunRecord",
    "RunStatus",
    "StateRecord",
    "TraceRecord",
    "chain_hash",
]

GENESIS_HASH = "0" * 64
"""`prev_hash` of a run's first record."""

RunStatus = Literal[
    "completed",
    "out_of_scope",
    "step_limit",
    "loop_detected",
    "budget_exhausted",
    "failed",
]
"""How a run ended. All but `failed` are clean stops with an answer (possibly partial)."""


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    run_id: str
    """The run this record belongs to."""
    seq: int = Field(ge=0)
    """Position in the run's chain (0 = the run's start)."""
    created_at: float
    """Unix time in seconds."""
    prev_hash: str = GENESIS_HASH
    """Hash of the previous record of the run."""
    hash: str = ""
    """SHA-256 of `prev_hash` + this record's canonical JSON (without `hash`)."""

    # `(hash, texts)`: the JSON of each dict/list field, encoded by `sealed()` from the payload
    # it hashed. SQL stores write these texts as the JSON columns.
    _sealed_json: tuple[str, dict[str, str]] | None = PrivateAttr(default=None)

    def payload(self) -> dict[str, Any]:
        """The record as JSON-ready data, without its own hash."""
        return self.model_dump(mode="json", exclude={"hash"})

    def compute_hash(self) -> str:
        """Recompute this record's hash from its content."""
        return chain_hash(self.prev_hash, self.payload())

    def sealed(self) -> Any:
        """Return a copy with `hash` set from the content."""
        payload = self.payload()
        digest = chain_hash(self.prev_hash, payload)
        sealed = self.model_copy(update={"hash": digest})
        # The JSON-ready payload is at hand: encoding its dict/list fields here with orjson
        # costs a third of what a store's writer pays to encode them from the models again.
        texts = compact_json(payload, _nested_fields(type(self)))
        if texts is not None:
            sealed._sealed_json = (digest, texts)
        return sealed

    def __eq__(self, other: object) -> bool:
        # Fields only: the texts `sealed()` keeps for stores are a cache, not content, so a
        # record read back from a store equals the one that was appended.
        if not isinstance(other, _Record):
            return NotImplemented
        return type(self) is type(other) and self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        # As pydantic's frozen-model hash: over the fields (unhashable when one holds a dict).
        return hash((type(self), *self.__dict__.values()))

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """Copy the record, as pydantic's `model_copy` does, without what `sealed()` kept.

        The JSON texts `sealed()` keeps for stores are dropped: after an `update` they would
        describe the old values.
        """
        copied = super().model_copy(update=update, deep=deep)
        copied._sealed_json = None
        return copied


@functools.cache
def _nested_fields(cls: type[_Record]) -> tuple[str, ...]:
    """The fields of `cls` that hold a dict or a list (possibly optional): its JSON columns."""
    names = []
    for name, field in cls.model_fields.items():
        annotation = field.annotation
        options = get_args(annotation) if get_origin(annotation) in (Union, UnionType) else ()
        if any(get_origin(a) in (dict, list) or a in (dict, list) for a in (annotation, *options)):
            names.append(name)
    return tuple(names)


def sealed_json_texts(record: _Record) -> Mapping[str, str]:
    """The JSON text of `record`'s dict/list fields as encoded by `sealed()`; {} if unknown.

    Unknown when the record was not sealed by `sealed()`, was copied since, or its hash was
    replaced: the texts are only returned for the hash they were computed with.
    """
    # Straight from pydantic's private dict: attribute access to a private attribute goes
    # through `__getattr__` after a failed lookup, several times slower on the writer's path.
    private = record.__pydantic_private__
    cached: tuple[str, dict[str, str]] | None = private.get("_sealed_json") if private else None
    if cached is None or cached[0] != record.hash:
        return {}
    return cached[1]


def chain_hash(prev_hash: str, payload: dict[str, Any]) -> str:
    """Hash one link of a run's chain."""
    return sha256_hex(prev_hash + canonical_json(payload))


class RunRecord(_Record):
    """The start of a run: its input and everything needed to replay it."""

    kind: Literal["run"] = "run"
    task: str
    """The user's request."""
    router: dict[str, Any] = Field(default_factory=dict)
    """Strategy names, versions and parameters per slot, limits."""
    registry_hash: str = ""
    """`Registry.content_hash()` when the run started."""
    budget_usd: float | None = None
    """The run's budget in USD, if any."""
    budget: dict[str, Any] | None = None
    """The run's whole `Budget` (USD, strong calls, shared key), if any."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    """Caller-supplied metadata (tenant, user, channel, ...)."""
    seed: int = 0
    """Seed of the run's sampling strategies (replay reuses it)."""
    replay_of: str | None = None
    """For a replay: the run it replays."""


class CandidateRecord(BaseModel):
    """One option a strategy considered, with its score."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    """Agent name, skill id or model name."""
    score: float | None = None
    """The strategy's score (higher is better); `None` when it does not score."""
    detail: dict[str, Any] = Field(default_factory=dict)
    """Per-candidate evidence (component scores, probabilities, ...)."""


class DecisionRecord(_Record):
    """One routing decision: one slot at one step (and, for per-branch slots, one branch)."""

    kind: Literal["decision"] = "decision"
    step: int
    """Routing step (0-based)."""
    slot: Literal["agent", "skills", "model", "refiner"]
    """Which slot decided."""
    branch: str = ""
    """For per-branch slots, the agent of the branch; empty for the agent slot."""
    strategy: str
    """Name of the strategy that decided (for composites, the one that answered)."""
    strategy_version: str = "1"
    """Version of the strategy's algorithm or learned state."""
    params: dict[str, Any] = Field(default_factory=dict)
    """The strategy's parameters when they are not those of `RunRecord.router` for this slot
    (e.g. a learning strategy whose version changed during the run); empty otherwise."""
    outcome: Literal["route", "finish", "abstain", "out_of_scope", "error"] = "route"
    """What the decision says."""
    chosen: list[str] = Field(default_factory=list)
    """Chosen agents, skill ids or model name."""
    candidates: list[CandidateRecord] = Field(default_factory=list)
    """Every candidate considered, with its score."""
    reason: str = ""
    """Why, in words."""
    evidence: dict[str, Any] = Field(default_factory=dict)
    """Strategy-specific evidence."""
    latency_ms: float = 0.0
    """Time the decision took."""
    error: str | None = None
    """For `outcome="error"`: what went wrong."""


class ModelCallRecord(_Record):
    """One attempt of one model call."""

    kind: Literal["model_call"] = "model_call"
    step: int
    branch: str
    """The agent that made the call (or `router`/`refiner`)."""
    call_index: int
    """Position of the call within its branch and step (replay serves outputs by it)."""
    attempt: int = 1
    """1 for the first attempt; retries and fallbacks count up."""
    model: str
    """Registry name of the model."""
    model_id: str
    """LiteLLM model id."""
    messages: list[dict[str, Any]] = Field(default_factory=list)
    """The request's messages (role, content). Never contains credentials."""
    response: str | None = None
    """The model's text, when it answered."""
    input_tokens: int = 0
    output_tokens: int = 0
    estimated_cost_usd: float = 0.0
    """Cost reserved before the call."""
    cost_usd: float = 0.0
    """Cost settled after the call."""
    latency_ms: float = 0.0
    error: str | None = None
    """Error message when the attempt failed."""
    error_type: str | None = None
    """Exception class name when the attempt failed."""


class AgentOutputRecord(_Record):
    """What one agent produced at one step (or how it failed)."""

    kind: Literal["agent_output"] = "agent_output"
    step: int
    agent: str
    task: str
    """The request the agent was given."""
    input_hash: str = ""
    """Hash of the agent's input (task + previous output); loop detection compares it."""
    skills: list[str] = Field(default_factory=list)
    """Skill ids in the agent's context."""
    model: str | None = None
    """Model the agent's calls ran on."""
    output: str | None = None
    final: bool = True
    """Whether the agent considered its answer final."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    """What the agent returned in `AgentResult.metadata`."""
    latency_ms: float = 0.0
    error: str | None = None
    error_type: str | None = None


class RunEndRecord(_Record):
    """The end of a run."""

    kind: Literal["run_end"] = "run_end"
    status: RunStatus
    reason: str = ""
    """Why the run ended, in words."""
    answer: str | None = None
    cost_usd: float = 0.0
    steps: int = 0
    error: str | None = None
    error_type: str | None = None


class FeedbackRecord(_Record):
    """Feedback on a finished run (a user rating, a judge's verdict, a business outcome)."""

    kind: Literal["feedback"] = "feedback"
    score: float | None = None
    """Quality in [0, 1], when scored."""
    label: str | None = None
    """Free label (`"misrouted"`, `"resolved"`, ...)."""
    agent: str | None = None
    """The agent the feedback is about, if one."""
    comment: str | None = None
    source: str = "user"
    """Who gave it: `user`, `judge`, `system`, ..."""


TraceRecord = Annotated[
    RunRecord
    | DecisionRecord
    | ModelCallRecord
    | AgentOutputRecord
    | RunEndRecord
    | FeedbackRecord,
    Field(discriminator="kind"),
]
"""Any record of a run's chain."""


class StateRecord(BaseModel):
    """One version of a piece of learned routing state (pheromone table, kNN memory, ...)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    """What the state is, e.g. `ant-colony/support-desk`."""
    version: int = Field(ge=1)
    """1, 2, 3, ...: each write appends the next version."""
    value: dict[str, Any]
    """The state itself."""
    created_at: float
    note: str = ""
    """Why this version was written (e.g. `rollback to 3`)."""
