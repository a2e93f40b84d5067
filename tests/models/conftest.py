"""Shared fixtures of the model tests. No test here reaches the network."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from agentroute.models import Message, ModelRequest
from agentroute.models._litellm import import_litellm
from agentroute.registry import ModelSpec, RetryPolicy

FAST_RETRY = RetryPolicy(max_attempts=3, initial_backoff_s=0, jitter=False)


@pytest.fixture
def litellm() -> ModuleType:
    """LiteLLM, imported the way the package imports it (offline cost map)."""
    return import_litellm()


def make_spec(name: str = "m", **overrides: Any) -> ModelSpec:
    """A priced spec with fast retries; keyword arguments override any field."""
    fields: dict[str, Any] = {
        "name": name,
        "model": "openai/gpt-4o-mini",
        "input_price_per_mtok": 1.0,
        "output_price_per_mtok": 2.0,
        "max_output_tokens": 100,
        "retry": FAST_RETRY,
    }
    fields.update(overrides)
    return ModelSpec(**fields)


def make_request(spec: ModelSpec, text: str = "What is 2 + 2?", **overrides: Any) -> ModelRequest:
    """A one-message request to `spec`."""
    return ModelRequest(model=spec, messages=(Message(role="user", content=text),), **overrides)


@pytest.fixture
def spec_factory() -> Callable[..., ModelSpec]:
    """`make_spec`, as a fixture."""
    return make_spec


@pytest.fixture(autouse=True)
def _fake_provider_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake keys, so the client's missing-key check passes and LiteLLM's (mocked) call runs.

    Tests about a missing key delete the variable themselves.
    """
    for env in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.setenv(env, "sk-test-fake-key-for-offline-tests")
