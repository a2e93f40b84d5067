"""Model prices from LiteLLM's bundled cost map, for specs that do not state their own."""

from __future__ import annotations

import functools
import sys
from typing import Any, NamedTuple

from agentroute.errors import ConfigurationError
from agentroute.models._litellm import import_litellm
from agentroute.registry import ModelSpec

__all__ = ["litellm_imported", "resolve_prices"]


class _MapEntry(NamedTuple):
    input_price_per_mtok: float | None
    output_price_per_mtok: float | None
    max_input_tokens: int | None


def resolve_prices(spec: ModelSpec) -> ModelSpec:
    """Return `spec` with both prices set, taking missing ones from LiteLLM's cost map.

    A spec that states both prices is returned unchanged (explicit prices win). Otherwise the
    spec's LiteLLM id is looked up in the map bundled with LiteLLM (never downloaded); an id with
    a provider prefix (`openai/gpt-4o-mini`) is also tried without it. A missing
    `context_window` is filled from the map's `max_input_tokens` on the way. Local models that
    LiteLLM lists at a price of 0 (e.g. `ollama/llama3.1`) resolve to 0.

    Raises:
        ConfigurationError: The spec lacks a price and the map has none for its model.
    """
    if spec.priced:
        return spec
    entry = _lookup(spec.model)
    update: dict[str, Any] = {}
    if entry is not None:
        if spec.input_price_per_mtok is None and entry.input_price_per_mtok is not None:
            update["input_price_per_mtok"] = entry.input_price_per_mtok
        if spec.output_price_per_mtok is None and entry.output_price_per_mtok is not None:
            update["output_price_per_mtok"] = entry.output_price_per_mtok
        if spec.context_window is None and entry.max_input_tokens is not None:
            update["context_window"] = entry.max_input_tokens
    resolved = spec.model_copy(update=update) if update else spec
    if not resolved.priced:
        msg = (
            f"model {spec.name!r} ({spec.model}) has no price in LiteLLM's cost map; pass "
            "input_price_per_mtok=... and output_price_per_mtok=... (0 for a free local model) "
            "to registry.model(...)"
        )
        raise ConfigurationError(msg)
    return resolved


def litellm_imported() -> bool:
    """Whether LiteLLM has been imported in this process (it is imported only when needed)."""
    return "litellm" in sys.modules


@functools.lru_cache(maxsize=1024)
def _lookup(model_id: str) -> _MapEntry | None:
    cost_map: dict[str, Any] = import_litellm().model_cost
    _, _, bare = model_id.partition("/")
    for key in (model_id, bare):
        info = cost_map.get(key) if key else None
        if isinstance(info, dict):
            return _MapEntry(
                _per_mtok(info.get("input_cost_per_token")),
                _per_mtok(info.get("output_cost_per_token")),
                _positive_int(info.get("max_input_tokens")),
            )
    return None


def _per_mtok(per_token: object) -> float | None:
    if isinstance(per_token, bool) or not isinstance(per_token, int | float) or per_token < 0:
        return None
    # Rounded so that 1.5e-07 becomes 0.15, not 0.15000000000000002 (specs are hashed).
    return round(float(per_token) * 1_000_000, 9)


def _positive_int(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return value
