"""Strategy names → classes, for declarative graphs. No if/elif dispatch, no entry points."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from agentroute.errors import ConfigurationError, did_you_mean
from agentroute.routing._composite import Fallback, FirstMatch
from agentroute.routing._protocol import RoutingStrategy
from agentroute.routing._refine import JoinAnswers
from agentroute.routing._rules import Rules
from agentroute.routing._static import Static

__all__ = ["build_refiner", "build_strategy", "register_strategy", "strategy_names"]

Factory = Callable[..., RoutingStrategy]

_CATALOG: dict[str, Factory] = {}

# Strategies whose modules are heavy (embeddings, numpy) load when a graph first names them.
_LAZY: dict[str, str] = {
    "retrieve-rerank": "agentroute.routing.skills:RetrieveRerank",
    "budget-switch": "agentroute.routing._budget_switch:BudgetSwitch",
    "reasoning": "agentroute.routing._reasoning:ReasoningRouter",
    "description": "agentroute.routing._description:DescriptionRouter",
    "example": "agentroute.routing._example:ExampleRouter",
    "ant-colony": "agentroute.routing.colony:AntColony",
}

_REFINERS: dict[str, Callable[..., Any]] = {}
_LAZY_REFINERS: dict[str, str] = {"llm": "agentroute.routing._refiner:Refiner"}


def _resolve(name: str, table: dict[str, Any], lazy: dict[str, str], where: str) -> Any:
    if name not in table and name in lazy:
        module, _, attr = lazy[name].partition(":")
        try:
            table[name] = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            msg = f"{where}: strategy {name!r} is not available: {exc}"
            raise ConfigurationError(msg) from exc
    return table.get(name)


def register_strategy(name: str, factory: Factory, *, replace: bool = False) -> None:
    """Make a strategy available to graph YAML under `name`.

    `factory(**params)` must return the strategy. Composite factories receive their inner
    strategies already built.

    Raises:
        ConfigurationError: The name is taken and `replace` is false.
    """
    if name in _CATALOG and not replace:
        msg = f"strategy name {name!r} is already registered; pass replace=True to override"
        raise ConfigurationError(msg)
    _CATALOG[name] = factory


def strategy_names() -> list[str]:
    """Names usable in graph YAML."""
    return sorted({*_CATALOG, *_LAZY})


def build_strategy(config: Mapping[str, Any], where: str = "strategy") -> RoutingStrategy:
    """Build a strategy from `{strategy: name, params: {...}}` (the graph YAML form).

    Composites (`first-match`, `fallback`) take `params: {strategies: [{strategy, params}, ...]}`.

    Raises:
        ConfigurationError: Unknown name (with a did-you-mean hint) or bad parameters.
    """
    if not isinstance(config, Mapping):
        msg = f"{where}: a strategy must be a mapping {{strategy: <name>, params: {{...}}}}"
        raise ConfigurationError(msg)
    name = config.get("strategy")
    if not isinstance(name, str):
        msg = f"{where}: needs 'strategy: <name>' (one of {strategy_names()})"
        raise ConfigurationError(msg)
    if _resolve(name, _CATALOG, _LAZY, where) is None:
        msg = f"{where}: unknown strategy {name!r}{did_you_mean(name, strategy_names())}"
        raise ConfigurationError(msg)
    raw_params = config.get("params") or {}
    if not isinstance(raw_params, Mapping):
        msg = f"{where}: params of strategy {name!r} must be a mapping, got {raw_params!r}"
        raise ConfigurationError(msg)
    params = dict(raw_params)
    if "strategies" in params:
        if not isinstance(params["strategies"], list):
            msg = f"{where}.strategies: expected a list of {{strategy, params}} mappings"
            raise ConfigurationError(msg)
        params["strategies"] = [
            build_strategy(inner, f"{where}.strategies[{i}]")
            for i, inner in enumerate(params["strategies"])
        ]
    factory = _CATALOG[name]
    try:
        if name == "static":
            choices = params.pop("choices", [])
            if isinstance(choices, str):
                choices = [choices]
            return factory(*choices, **params)
        return factory(**params)
    except TypeError as exc:
        msg = f"{where}: bad parameters for strategy {name!r}: {exc}"
        raise ConfigurationError(msg) from exc
    except ConfigurationError as exc:  # e.g. a bad rule: say which slot of which file
        msg = f"{where}: {exc}"
        raise ConfigurationError(msg) from exc


def build_refiner(config: Mapping[str, Any] | None, where: str = "refiner") -> Any:
    """Build a refiner from `{strategy: join|llm, params: {...}}`; `None` = `JoinAnswers`.

    Raises:
        ConfigurationError: Unknown refiner or bad parameters.
    """
    config = config or {"strategy": "join"}
    name = config.get("strategy")
    factory = _resolve(str(name), _REFINERS, _LAZY_REFINERS, where)
    if factory is None:
        known = sorted({*_REFINERS, *_LAZY_REFINERS})
        msg = f"{where}: unknown refiner {name!r}{did_you_mean(str(name), known)}"
        raise ConfigurationError(msg)
    try:
        return factory(**dict(config.get("params") or {}))
    except TypeError as exc:
        msg = f"{where}: bad parameters for refiner {name!r}: {exc}"
        raise ConfigurationError(msg) from exc


_REFINERS["join"] = JoinAnswers
register_strategy("static", Static)
register_strategy("rules", Rules)
register_strategy("first-match", FirstMatch)
register_strategy("fallback", Fallback)
