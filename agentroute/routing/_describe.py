"""How a strategy is described in the trace: name, version, parameters."""

from __future__ import annotations

from typing import Any

__all__ = ["describe_strategy"]


def describe_strategy(strategy: object) -> dict[str, Any]:
    """Describe any strategy as `{"strategy", "version", "params"}` (the graph YAML form).

    Uses what the strategy exposes: `name`, `version` and `params()`.
    """
    params_fn = getattr(strategy, "params", None)
    params: Any = params_fn() if callable(params_fn) else {}
    return {
        "strategy": str(getattr(strategy, "name", type(strategy).__name__)),
        "version": str(getattr(strategy, "version", "1")),
        "params": params,
    }
