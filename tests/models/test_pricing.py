"""`resolve_prices`: prices and context windows from LiteLLM's local cost map."""

from __future__ import annotations

import os

import pytest

from agentroute.errors import ConfigurationError
from agentroute.models import resolve_prices
from agentroute.models._pricing import litellm_imported
from agentroute.registry import ModelSpec


def test_known_model_gets_prices_from_the_map() -> None:
    """A provider-prefixed id LiteLLM knows resolves to non-zero prices and a context window."""
    spec = resolve_prices(ModelSpec(name="cheap", model="openai/gpt-4o-mini"))
    assert spec.input_price_per_mtok is not None
    assert spec.output_price_per_mtok is not None
    assert spec.input_price_per_mtok > 0
    assert spec.output_price_per_mtok > spec.input_price_per_mtok
    assert spec.context_window is not None
    assert spec.context_window > 0
    assert spec.priced
    assert litellm_imported()
    # The local map was used; LiteLLM never went to the network for it.
    assert os.environ.get("LITELLM_LOCAL_MODEL_COST_MAP")


def test_prices_are_rounded_per_million() -> None:
    """Per-token prices become clean per-million figures (no float dust in hashed specs)."""
    spec = resolve_prices(ModelSpec(name="cheap", model="gpt-4o-mini"))
    assert spec.input_price_per_mtok == pytest.approx(0.15)
    assert str(spec.input_price_per_mtok) == "0.15"


def test_explicit_prices_win() -> None:
    """A spec with both prices comes back unchanged, without even a context window added."""
    spec = ModelSpec(
        name="cheap",
        model="openai/gpt-4o-mini",
        input_price_per_mtok=9.0,
        output_price_per_mtok=0.0,
    )
    assert resolve_prices(spec) is spec


def test_partial_price_is_completed_and_kept() -> None:
    """A spec with only an input price keeps it and takes the output price from the map."""
    spec = resolve_prices(
        ModelSpec(name="cheap", model="openai/gpt-4o-mini", input_price_per_mtok=7.0)
    )
    assert spec.input_price_per_mtok == 7.0
    assert spec.output_price_per_mtok is not None
    assert spec.output_price_per_mtok > 0


def test_explicit_context_window_is_kept() -> None:
    """A context window set on the spec is not overwritten by the map."""
    spec = resolve_prices(ModelSpec(name="cheap", model="gpt-4o-mini", context_window=1000))
    assert spec.context_window == 1000


def test_local_model_listed_at_zero_is_free() -> None:
    """An Ollama model that LiteLLM lists at price 0 resolves to 0, not to an error."""
    spec = resolve_prices(ModelSpec(name="local", model="ollama/llama3.1"))
    assert (spec.input_price_per_mtok, spec.output_price_per_mtok) == (0.0, 0.0)


def test_unknown_model_without_prices_is_refused() -> None:
    """A model absent from the map and without prices raises `ConfigurationError` with the fix."""
    with pytest.raises(ConfigurationError) as info:
        resolve_prices(ModelSpec(name="x", model="ollama/foo-not-a-model"))
    message = str(info.value)
    assert "'x' (ollama/foo-not-a-model)" in message
    assert "input_price_per_mtok=" in message
    assert "output_price_per_mtok=" in message
    assert "0 for a free local model" in message


def test_unknown_model_with_prices_is_accepted() -> None:
    """Explicit prices make any model id usable, known to LiteLLM or not."""
    spec = ModelSpec(
        name="x", model="ollama/foo-not-a-model", input_price_per_mtok=0, output_price_per_mtok=0
    )
    assert resolve_prices(spec) is spec
