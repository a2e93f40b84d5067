"""A missing provider key is an authentication error named up front, not a server outage."""

from __future__ import annotations

import pytest

from agentroute.errors import ModelAuthError
from agentroute.models import LiteLLMClient, Message, ModelRequest, missing_api_key
from agentroute.registry import ModelSpec


def _spec(**kw: object) -> ModelSpec:
    return ModelSpec(
        name="m",
        model=str(kw.pop("model", "openai/gpt-4o-mini")),
        input_price_per_mtok=1.0,
        output_price_per_mtok=1.0,
        **kw,  # type: ignore[arg-type]
    )


def test_missing_api_key_names_the_provider_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """With OPENAI_API_KEY unset, an OpenAI model reports that variable; set, it reports none."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert missing_api_key(_spec()) == "OPENAI_API_KEY"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    assert missing_api_key(_spec()) is None


def test_missing_api_key_respects_api_key_env_and_api_base(monkeypatch: pytest.MonkeyPatch) -> None:
    """A custom api_key_env is the one checked; a self-hosted api_base needs no known key."""
    monkeypatch.delenv("MY_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert missing_api_key(_spec(api_key_env="MY_KEY")) == "MY_KEY"
    assert missing_api_key(_spec(params={"api_base": "http://127.0.0.1:8000/v1"})) is None
    assert missing_api_key(_spec(model="ollama/llama3.1")) is None


async def test_client_refuses_before_calling_without_key(
    monkeypatch: pytest.MonkeyPatch, offline_litellm: object
) -> None:
    """The client raises ModelAuthError naming the variable instead of calling the provider."""
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    request = ModelRequest(
        model=_spec(model="anthropic/claude-sonnet-4-5"),
        messages=(Message(role="user", content="hi"),),
    )
    with pytest.raises(ModelAuthError, match="ANTHROPIC_API_KEY") as info:
        await LiteLLMClient().complete(request)
    assert not info.value.retryable
