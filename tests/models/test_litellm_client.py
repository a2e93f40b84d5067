"""`LiteLLMClient`: request building, response parsing, and the LiteLLM error boundary."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from agentroute.errors import (
    ModelAuthError,
    ModelBadRequest,
    ModelCallError,
    ModelRateLimited,
    ModelResponseError,
    ModelTimeout,
    ModelUnavailable,
)
from agentroute.models import LiteLLMClient, ModelClient, ModelResponse, Usage

from .conftest import make_request, make_spec

FAKE_KEY = "sk-test-DONOTLEAK0123456789abcdefXYZ"
KEY_ENV = "AGENTROUTE_TEST_FAKE_KEY"


def _http(status: int) -> httpx.Response:
    return httpx.Response(status, request=httpx.Request("POST", "https://provider.invalid/v1"))


def _patch_acompletion(
    monkeypatch: pytest.MonkeyPatch, litellm: ModuleType, behaviour: Callable[..., Any]
) -> list[dict[str, Any]]:
    """Replace `litellm.acompletion`; returns the list of keyword arguments it receives."""
    calls: list[dict[str, Any]] = []

    async def fake(**kwargs: Any) -> Any:
        calls.append(kwargs)
        return behaviour(**kwargs)

    monkeypatch.setattr(litellm, "acompletion", fake)
    return calls


def _raise(exc: BaseException) -> Callable[..., Any]:
    def behaviour(**_: Any) -> Any:
        raise exc

    return behaviour


def test_client_satisfies_the_protocol() -> None:
    """`LiteLLMClient` is a `ModelClient`."""
    assert isinstance(LiteLLMClient(), ModelClient)


async def test_mocked_call_is_parsed(litellm: ModuleType) -> None:
    """A call answered by LiteLLM's own `mock_response` yields text, usage, model and finish."""
    spec = make_spec(params={"mock_response": "four"})
    response = await LiteLLMClient().complete(make_request(spec))
    assert response.text == "four"
    assert response.usage.input_tokens > 0
    assert response.usage.output_tokens > 0
    assert response.model_id == "gpt-4o-mini"
    assert response.finish_reason == "stop"
    assert response.cost_usd is None


async def test_request_arguments(monkeypatch: pytest.MonkeyPatch, litellm: ModuleType) -> None:
    """The call carries the output cap, timeout, no LiteLLM retries, params and request options."""
    calls = _patch_acompletion(
        monkeypatch,
        litellm,
        lambda **_: litellm.ModelResponse(
            model="gpt-4o-mini",
            choices=[{"message": {"role": "assistant", "content": "ok"}, "index": 0}],
            usage={"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        ),
    )
    spec = make_spec(timeout_s=7.5, params={"api_base": "http://localhost:1", "top_p": 0.5})
    request = make_request(spec, max_tokens=42, temperature=0.2, response_format={"type": "json"})
    client = LiteLLMClient(drop_params=False, extra={"api_base": "http://shared", "seed": 1})
    await client.complete(request)
    (kwargs,) = calls
    assert kwargs["model"] == "openai/gpt-4o-mini"
    assert kwargs["messages"] == [{"role": "user", "content": "What is 2 + 2?"}]
    assert kwargs["max_tokens"] == 42
    assert kwargs["timeout"] == 7.5
    assert kwargs["num_retries"] == 0
    assert kwargs["drop_params"] is False
    assert kwargs["temperature"] == 0.2
    assert kwargs["response_format"] == {"type": "json"}
    assert kwargs["api_base"] == "http://localhost:1"  # the spec's params beat `extra`
    assert kwargs["seed"] == 1
    assert kwargs["top_p"] == 0.5
    assert "api_key" not in kwargs


async def test_none_content_becomes_empty_text(
    monkeypatch: pytest.MonkeyPatch, litellm: ModuleType
) -> None:
    """A message with `content=None` (e.g. only tool calls) parses to `""`, not a crash."""
    _patch_acompletion(
        monkeypatch,
        litellm,
        lambda **_: litellm.ModelResponse(
            model="gpt-4o-mini",
            choices=[
                {
                    "message": {"role": "assistant", "content": None},
                    "finish_reason": "length",
                    "index": 0,
                }
            ],
            usage={"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
        ),
    )
    response = await LiteLLMClient().complete(make_request(make_spec()))
    assert response == ModelResponse(
        text="",
        usage=Usage(input_tokens=3, output_tokens=4),
        model_id="gpt-4o-mini",
        finish_reason="length",
    )


async def test_response_without_choices_is_a_response_error(
    monkeypatch: pytest.MonkeyPatch, litellm: ModuleType
) -> None:
    """A response with no choices raises the retryable `ModelResponseError`."""
    _patch_acompletion(
        monkeypatch, litellm, lambda **_: litellm.ModelResponse(model="x", choices=[])
    )
    with pytest.raises(ModelResponseError):
        await LiteLLMClient().complete(make_request(make_spec()))


_CASES: list[tuple[str, Callable[[Any], BaseException], type[ModelCallError]]] = [
    ("Timeout", lambda ex: ex.Timeout("slow", "gpt-4o-mini", "openai"), ModelTimeout),
    (
        "RateLimitError",
        lambda ex: ex.RateLimitError("too many", "openai", "gpt-4o-mini"),
        ModelRateLimited,
    ),
    (
        "AuthenticationError",
        lambda ex: ex.AuthenticationError("bad key", "openai", "gpt-4o-mini"),
        ModelAuthError,
    ),
    (
        "PermissionDeniedError",
        lambda ex: ex.PermissionDeniedError("no", "openai", "gpt-4o-mini", response=_http(403)),
        ModelAuthError,
    ),
    (
        "BadRequestError",
        lambda ex: ex.BadRequestError("bad", "gpt-4o-mini", "openai"),
        ModelBadRequest,
    ),
    (
        "NotFoundError",
        lambda ex: ex.NotFoundError("no such model", "gpt-4o-mini", "openai"),
        ModelBadRequest,
    ),
    (
        "ContextWindowExceededError",
        lambda ex: ex.ContextWindowExceededError("too long", "gpt-4o-mini", "openai"),
        ModelBadRequest,
    ),
    (
        "UnsupportedParamsError",
        lambda ex: ex.UnsupportedParamsError("no top_k", llm_provider="openai", model="x"),
        ModelBadRequest,
    ),
    (
        "UnprocessableEntityError",
        lambda ex: ex.UnprocessableEntityError("422", "x", "openai", response=_http(422)),
        ModelBadRequest,
    ),
    (
        "ServiceUnavailableError",
        lambda ex: ex.ServiceUnavailableError("down", "openai", "gpt-4o-mini"),
        ModelUnavailable,
    ),
    (
        "InternalServerError",
        lambda ex: ex.InternalServerError("500", "openai", "gpt-4o-mini"),
        ModelUnavailable,
    ),
    (
        "BadGatewayError",
        lambda ex: ex.BadGatewayError("502", "openai", "gpt-4o-mini"),
        ModelUnavailable,
    ),
    (
        "APIConnectionError",
        lambda ex: ex.APIConnectionError("refused", "openai", "gpt-4o-mini"),
        ModelUnavailable,
    ),
    ("APIError-503", lambda ex: ex.APIError(503, "oops", "openai", "x"), ModelUnavailable),
    ("APIError-429", lambda ex: ex.APIError(429, "slow", "openai", "x"), ModelRateLimited),
    ("APIError-401", lambda ex: ex.APIError(401, "who", "openai", "x"), ModelAuthError),
    (
        "APIResponseValidationError",
        lambda ex: ex.APIResponseValidationError("garbled", "openai", "x"),
        ModelResponseError,
    ),
    ("RuntimeError", lambda ex: RuntimeError("something else"), ModelUnavailable),
]


@pytest.mark.parametrize(
    ("factory", "expected"),
    [pytest.param(factory, expected, id=name) for name, factory, expected in _CASES],
)
async def test_litellm_errors_are_translated(
    monkeypatch: pytest.MonkeyPatch,
    litellm: ModuleType,
    factory: Callable[[Any], BaseException],
    expected: type[ModelCallError],
) -> None:
    """Each LiteLLM exception becomes the matching `ModelCallError`, chained to the original."""
    original = factory(litellm.exceptions)
    _patch_acompletion(monkeypatch, litellm, _raise(original))
    spec = make_spec(name="cheap")
    with pytest.raises(ModelCallError) as info:
        await LiteLLMClient().complete(make_request(spec))
    assert type(info.value) is expected
    assert info.value.__cause__ is original
    assert info.value.model == "cheap"
    assert "'cheap' (openai/gpt-4o-mini)" in str(info.value)


async def test_litellm_mock_exception_is_translated(litellm: ModuleType) -> None:
    """An exception raised inside a real `acompletion` (LiteLLM's mock) is translated too."""
    spec = make_spec(params={"mock_response": litellm.RateLimitError("slow", "openai", "x")})
    with pytest.raises(ModelRateLimited) as info:
        await LiteLLMClient().complete(make_request(spec))
    assert isinstance(info.value.__cause__, litellm.RateLimitError)


async def test_cancellation_is_not_translated(
    monkeypatch: pytest.MonkeyPatch, litellm: ModuleType
) -> None:
    """Cancelling a call propagates `CancelledError`; it is not turned into a model error."""
    import asyncio

    async def never(**_: Any) -> Any:
        await asyncio.sleep(10)

    monkeypatch.setattr(litellm, "acompletion", never)
    task = asyncio.create_task(LiteLLMClient().complete(make_request(make_spec())))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.parametrize(
    ("model", "api_key_env", "expected_var"),
    [
        ("openai/gpt-4o-mini", None, "OPENAI_API_KEY"),
        ("gpt-4o-mini", None, "OPENAI_API_KEY"),
        ("anthropic/claude-3-5-haiku-latest", None, "ANTHROPIC_API_KEY"),
        ("openai/gpt-4o-mini", KEY_ENV, KEY_ENV),
    ],
)
async def test_auth_error_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
    litellm: ModuleType,
    model: str,
    api_key_env: str | None,
    expected_var: str,
) -> None:
    """An authentication failure says which environment variable to set."""
    monkeypatch.setenv(KEY_ENV, FAKE_KEY)
    _patch_acompletion(
        monkeypatch, litellm, _raise(litellm.AuthenticationError("401", "openai", model))
    )
    spec = make_spec(model=model, api_key_env=api_key_env)
    with pytest.raises(ModelAuthError, match=f"set {expected_var} to a valid key"):
        await LiteLLMClient().complete(make_request(spec))


async def test_missing_key_variable_fails_before_the_call(
    monkeypatch: pytest.MonkeyPatch, litellm: ModuleType
) -> None:
    """An unset `api_key_env` gives `ModelAuthError` naming the variable; nothing is sent."""
    monkeypatch.delenv(KEY_ENV, raising=False)
    calls = _patch_acompletion(monkeypatch, litellm, lambda **_: None)
    with pytest.raises(ModelAuthError, match=KEY_ENV) as info:
        await LiteLLMClient().complete(make_request(make_spec(api_key_env=KEY_ENV)))
    assert calls == []
    assert not info.value.retryable


async def test_key_is_sent_but_never_leaks(
    monkeypatch: pytest.MonkeyPatch, litellm: ModuleType
) -> None:
    """The key from `api_key_env` reaches LiteLLM but not errors, reprs or log events.

    The provider error echoes the key (as some providers do), plus an unrelated token after
    `api_key=`; both are scrubbed.
    """
    monkeypatch.setenv(KEY_ENV, FAKE_KEY)
    other_token = "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5"
    echo = litellm.AuthenticationError(
        f"Incorrect API key provided: {FAKE_KEY}; retry with api_key={other_token}",
        "openai",
        "gpt-4o-mini",
    )
    calls = _patch_acompletion(monkeypatch, litellm, _raise(echo))
    request = make_request(make_spec(api_key_env=KEY_ENV))
    client = LiteLLMClient()
    with capture_logs() as logs, pytest.raises(ModelAuthError) as info:
        await client.complete(request)
    assert calls[0]["api_key"] == FAKE_KEY
    shown = " ".join([str(info.value), repr(info.value), repr(request), repr(client), str(logs)])
    assert FAKE_KEY not in shown
    assert FAKE_KEY[8:20] not in shown
    assert other_token not in shown
    assert logs, "the failure is logged at debug level"


async def test_successful_call_logs_no_prompt_and_no_key(
    monkeypatch: pytest.MonkeyPatch, litellm: ModuleType
) -> None:
    """A successful call logs model, latency and tokens at debug level, never prompt or key."""
    monkeypatch.setenv(KEY_ENV, FAKE_KEY)
    request = make_request(make_spec(api_key_env=KEY_ENV, params={"mock_response": "4"}))
    with capture_logs() as logs:
        response = await LiteLLMClient().complete(request)
    assert [(e["event"], e["log_level"]) for e in logs] == [("model_call", "debug")]
    assert set(logs[0]) >= {"model", "latency_ms", "input_tokens", "output_tokens"}
    assert "What is 2 + 2?" not in str(logs)
    assert FAKE_KEY not in str(logs) + repr(response) + repr(request)


def test_importing_the_package_does_not_import_litellm() -> None:
    """`import agentroute.models` (and building a client) leaves LiteLLM unimported."""
    code = (
        "import sys, agentroute, agentroute.models as m\n"
        "m.LiteLLMClient()\n"
        "assert 'litellm' not in sys.modules, 'litellm was imported'\n"
        "from agentroute.models._pricing import litellm_imported\n"
        "assert not litellm_imported()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
