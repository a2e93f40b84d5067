"""Declarative router layouts: `graphs/*.yaml` validated into a `GraphSpec`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentroute._yaml import safe_load
from agentroute.errors import ContentError
from agentroute.registry._specs import Name

__all__ = ["GraphSpec", "LimitsSpec", "RouterSpec", "SlotSpec", "read_graph_file"]


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SlotSpec(_Spec):
    """One slot of the router: a strategy by its registered name, and its parameters."""

    strategy: str = Field(min_length=1)
    """Name of a registered strategy, e.g. `rules`, `static`, `first-match`."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments of the strategy's constructor."""


class RouterSpec(_Spec):
    """The strategies of the router's slots."""

    agent: SlotSpec
    """Who acts."""
    skills: SlotSpec | None = None
    """Which skills go into the agent's context; `None` = the agent's declared skills."""
    model: SlotSpec | None = None
    """Which model each branch runs on; `None` = the agent's default model or tier."""
    refiner: SlotSpec | None = None
    """How several answers are merged; `None` = the built-in deterministic merge."""


class LimitsSpec(_Spec):
    """Limits that end a run cleanly, with the reason recorded."""

    max_steps: int = Field(default=8, ge=1, le=1000)
    """Routing steps at most."""
    loop_limit: int = Field(default=3, ge=2, le=100)
    """The same agent chosen with the same input this many times ends the run."""
    agent_concurrency: int = Field(default=8, ge=1, le=1000)
    """Branches running at once."""


class GraphSpec(_Spec):
    """A router layout declared in YAML. Python code still provides the agent functions."""

    name: Name
    """Name of the layout."""
    description: str = ""
    """What this layout is for."""
    agents: tuple[Name, ...] = ()
    """Agents the router may choose; empty = every registered agent."""
    router: RouterSpec
    """Strategies per slot."""
    store: str | None = None
    """Trace store URL, e.g. `sqlite:///agentroute.db`."""
    budget_usd: float | None = Field(default=None, gt=0)
    """Default per-run budget in USD."""
    limits: LimitsSpec = LimitsSpec()
    """Step and loop limits."""
    source: str | None = None
    """File the layout was read from."""


def read_graph_file(path: Path) -> GraphSpec:
    """Read and validate one graph YAML file.

    Raises:
        ContentError: The file is missing, not YAML, or does not fit `GraphSpec`.
    """
    try:
        data: Any = safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ContentError(str(path), "no such file") from exc
    except UnicodeDecodeError as exc:
        raise ContentError(str(path), f"not UTF-8 text: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ContentError(str(path), f"not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ContentError(
            str(path), "a graph file must be a YAML mapping with 'name' and 'router'"
        )
    try:
        return GraphSpec.model_validate({**data, "source": str(path)})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise ContentError(str(path), problems) from exc
