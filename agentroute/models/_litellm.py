"""`LiteLLMClient`, the real `ModelClient`, and the one boundary translating LiteLLM errors.

LiteLLM is imported on first use only (its import takes seconds), and always through
`import_litellm`, which first points LiteLLM at its bundled cost map so that importing it never
touches the network.
"""

from __future__ import annotations

import functools
import os
import re
import threading
import time
import warnings
from types import ModuleType
from typing import Any

from agentroute._log import get_logger
from agentroute.errors import (
    ModelAuthError,
    ModelBadRequest,
    ModelCallError,
    ModelRateLimited,
    ModelResponseError,
    ModelTimeout,
    ModelUnavailable,
)
from agentroute.models._protocol import ModelRequest, ModelResponse, Usage
from agentroute.registry import ModelSpec

__all__ = ["LiteLLMClient", "import_litellm", "missing_api_key"]

_log = get_logger(__name__)

_import_lock = threading.Lock()


def import_litellm() -> ModuleType:
    """Import LiteLLM offline and quiet, once.

    `LITELLM_LOCAL_MODEL_COST_MAP` must be set before the first import, otherwise LiteLLM
    downloads its cost map at import time. A user who set the variable keeps their value.
    """
    with _import_lock:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        import litellm

        # Otherwise LiteLLM prints provider hints to stdout; our errors carry the fix instead.
        litellm.suppress_debug_info = True
        if not getattr(litellm, "_agentroute_warmed", False):
            # LiteLLM's response models finish building on first use, and that build emits a
            # pydantic UserWarning about a TypedDict ReadOnly qualifier. Build them once here,
            # with only that warning silenced, so users (and `-W error` test suites) never see
            # it from inside a call.
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=r".*ReadOnly qualifier.*")
                litellm.ModelResponse()
            litellm._agentroute_warmed = True
        return litellm


class LiteLLMClient:
    """Calls any model LiteLLM supports (OpenAI, Anthropic, a local Ollama, ...).

    One call is one attempt: LiteLLM's own retries are switched off because retries, fallbacks,
    timeouts and budgets are applied around the client by the runtime. Every failure is raised
    as a `ModelCallError` subclass, with the LiteLLM exception as its `__cause__`.

    Args:
        drop_params: Let LiteLLM drop parameters the provider does not support instead of
            failing the call.
        extra: Keyword arguments sent with every call (e.g. `api_base` of a shared proxy);
            a spec's `params` override them.

    Example:
        ```python
        client = LiteLLMClient()
        response = await client.complete(request)
        ```
    """

    def __init__(self, *, drop_params: bool = True, extra: dict[str, Any] | None = None) -> None:
        self._drop_params = drop_params
        self._extra = dict(extra or {})

    def __repr__(self) -> str:
        # `extra` is left out: it may hold an api_base with credentials in it.
        return f"LiteLLMClient(drop_params={self._drop_params})"

    async def complete(self, request: ModelRequest) -> ModelResponse:
        """Perform one call through `litellm.acompletion` and return the answer.

        Raises:
            ModelCallError: A subclass saying what went wrong (see `agentroute.errors`).
        """
        spec = request.model
        api_key = _api_key(spec)
        if api_key is None:
            env = missing_api_key(spec)
            if env is not None:
                msg = (
                    f"model {spec.name!r} ({spec.model}) needs an API key in {env}, which is "
                    f"not set: export {env}=... (or set api_key_env on the model)"
                )
                raise ModelAuthError(msg, model=spec.name)
        litellm = import_litellm()
        kwargs: dict[str, Any] = {**self._extra, **spec.params}
        kwargs.update(
            model=spec.model,
            messages=[m.model_dump() for m in request.messages],
            max_tokens=request.output_cap,
            timeout=spec.timeout_s,
            num_retries=0,
            drop_params=self._drop_params,
        )
        if request.temperature is not None:
            kwargs["temperature"] = request.temperature
        if request.response_format is not None:
            kwargs["response_format"] = request.response_format
        if api_key is not None:
            kwargs["api_key"] = api_key

        started = time.perf_counter()
        try:
            raw = await litellm.acompletion(**kwargs)
        except Exception as exc:
            _log.debug(
                "model_call_failed",
                model=spec.name,
                latency_ms=round((time.perf_counter() - started) * 1000.0, 1),
                error=type(exc).__name__,
            )
            raise _translate(exc, spec, secret=api_key) from exc
        response = _parse(raw, spec)
        _log.debug(
            "model_call",
            model=spec.name,
            model_id=response.model_id,
            latency_ms=round((time.perf_counter() - started) * 1000.0, 1),
            input_tokens=response.usage.input_tokens,
            output_tokens=response.usage.output_tokens,
            finish_reason=response.finish_reason,
        )
        return response


def _api_key(spec: ModelSpec) -> str | None:
    """The key from the spec's `api_key_env`, read now so a rotated key is picked up."""
    if spec.api_key_env is None:
        return None
    value = os.environ.get(spec.api_key_env)
    if not value:
        msg = (
            f"model {spec.name!r} ({spec.model}) reads its API key from the environment "
            f"variable {spec.api_key_env}, which is not set; export {spec.api_key_env}=..."
        )
        raise ModelAuthError(msg, model=spec.name)
    return value


def _parse(raw: Any, spec: ModelSpec) -> ModelResponse:
    """Turn LiteLLM's OpenAI-shaped response into a `ModelResponse`.

    `cost_usd` stays `None`: the runtime prices every call from the spec, whose prices were
    resolved from the same cost map when the router was compiled.
    """
    try:
        choice = raw.choices[0]
        text = choice.message.content or ""
        usage = getattr(raw, "usage", None)
        return ModelResponse(
            text=text,
            usage=Usage(
                input_tokens=(getattr(usage, "prompt_tokens", 0) or 0),
                output_tokens=(getattr(usage, "completion_tokens", 0) or 0),
            ),
            model_id=getattr(raw, "model", None) or spec.model,
            finish_reason=choice.finish_reason,
        )
    except (AttributeError, IndexError, TypeError, ValueError) as exc:
        msg = f"model {spec.name!r} ({spec.model}) returned a response without a usable answer"
        raise ModelResponseError(msg, model=spec.name) from exc


# --- the error boundary -------------------------------------------------------------------------

_MAX_DETAIL = 500

_SECRET_PATTERNS = (
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{6,}"), "sk-***"),
    (re.compile(r"\bAIza[0-9A-Za-z_\-]{20,}"), "AIza***"),
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/\-]{8,}=*"), r"\1 ***"),
    (
        re.compile(
            r"(?i)((?:api[_-]?)?key|token|secret|password|authorization)"
            r"(['\"]?\s*[:=]\s*['\"]?)[A-Za-z0-9._~+/\-]{8,}=*"
        ),
        r"\1\2***",
    ),
)

_PROVIDER_KEY_ENV = {
    "openai": "OPENAI_API_KEY",
    "text-completion-openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "gemini": "GEMINI_API_KEY",
    "mistral": "MISTRAL_API_KEY",
    "groq": "GROQ_API_KEY",
    "cohere": "COHERE_API_KEY",
    "cohere_chat": "COHERE_API_KEY",
    "deepseek": "DEEPSEEK_API_KEY",
    "openrouter": "OPENROUTER_API_KEY",
    "xai": "XAI_API_KEY",
    "together_ai": "TOGETHERAI_API_KEY",
    "fireworks_ai": "FIREWORKS_AI_API_KEY",
    "perplexity": "PERPLEXITYAI_API_KEY",
    "azure": "AZURE_API_KEY",
    "huggingface": "HUGGINGFACE_API_KEY",
}
"""Provider (LiteLLM's id prefix) → the environment variable LiteLLM reads its key from."""

_STATUS_ERRORS: dict[int, type[ModelCallError]] = {
    400: ModelBadRequest,
    401: ModelAuthError,
    403: ModelAuthError,
    404: ModelBadRequest,
    408: ModelTimeout,
    413: ModelBadRequest,
    422: ModelBadRequest,
    429: ModelRateLimited,
}
"""HTTP status → error, for LiteLLM errors of no more specific class (e.g. a bare `APIError`)."""


def _scrub(text: str, secret: str | None = None) -> str:
    """Remove anything that looks like a credential from `text`."""
    if secret and len(secret) >= 4:
        text = text.replace(secret, "***")
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def missing_api_key(spec: ModelSpec) -> str | None:
    """Name the environment variable the model's provider needs when it is not set.

    Returns `None` when the key is set, when the provider needs none we know of (a local
    Ollama), or when the spec points at its own `api_base` (a self-hosted compatible server
    decides itself whether it wants a key).
    """
    if "api_base" in spec.params or "base_url" in spec.params:
        return None
    env = _expected_key_env(spec)
    if env is None or os.environ.get(env):
        return None
    return env


def _expected_key_env(spec: ModelSpec) -> str | None:
    """The environment variable the provider of `spec.model` expects, when we can tell."""
    if spec.api_key_env is not None:
        return spec.api_key_env
    prefix, sep, _ = spec.model.partition("/")
    provider = prefix if sep else None
    if provider is None:
        # A bare id such as "gpt-4o-mini": LiteLLM knows whose it is.
        try:
            provider = import_litellm().get_llm_provider(spec.model)[1]
        except Exception:
            return None
    return _PROVIDER_KEY_ENV.get(str(provider))


@functools.cache
def _error_table() -> tuple[tuple[type[BaseException], type[ModelCallError], str], ...]:
    """LiteLLM exception class → our class and what to tell the user. First match wins.

    Order matters: LiteLLM's `Timeout` subclasses `APIConnectionError`, and the specific
    bad-request errors subclass `BadRequestError`.
    """
    ex = import_litellm().exceptions
    return (
        (ex.Timeout, ModelTimeout, "the provider did not answer in time"),
        (TimeoutError, ModelTimeout, "the provider did not answer in time"),
        (ex.RateLimitError, ModelRateLimited, "the provider rate-limited the call"),
        (ex.AuthenticationError, ModelAuthError, "the provider rejected the credentials"),
        (ex.PermissionDeniedError, ModelAuthError, "the provider denied access to the model"),
        (
            ex.ContextWindowExceededError,
            ModelBadRequest,
            "the prompt exceeds the model's context window; shorten it or use a model with a "
            "larger one",
        ),
        (
            ex.UnsupportedParamsError,
            ModelBadRequest,
            "the provider does not support a parameter; remove it from params or keep "
            "drop_params=True",
        ),
        (
            ex.NotFoundError,
            ModelBadRequest,
            "the provider does not know the model; check the LiteLLM model id",
        ),
        (ex.BadRequestError, ModelBadRequest, "the provider rejected the request"),
        (ex.UnprocessableEntityError, ModelBadRequest, "the provider rejected the request"),
        (
            ex.APIResponseValidationError,
            ModelResponseError,
            "the model's answer could not be used",
        ),
        (ex.ServiceUnavailableError, ModelUnavailable, "the provider is unavailable"),
        (ex.InternalServerError, ModelUnavailable, "the provider failed"),
        (ex.BadGatewayError, ModelUnavailable, "the provider failed"),
        (ex.APIConnectionError, ModelUnavailable, "the provider could not be reached"),
    )


def _translate(exc: BaseException, spec: ModelSpec, *, secret: str | None = None) -> ModelCallError:
    """Map an exception from LiteLLM to the `ModelCallError` subclass that says what happened.

    The only place LiteLLM exceptions are interpreted. The message names the model, says what
    went wrong and how to fix it, and never contains anything that looks like a key. The caller
    raises the result `from exc`.

    Args:
        exc: What `litellm.acompletion` raised.
        spec: The model that was called.
        secret: The API key sent with the call, scrubbed from the message verbatim.
    """
    for source, target, what in _error_table():
        if isinstance(exc, source):
            error_type, summary = target, what
            break
    else:
        status = getattr(exc, "status_code", None)
        if not isinstance(status, int):
            status = 0
        error_type = _STATUS_ERRORS.get(status, ModelUnavailable)
        summary = f"the provider call failed ({type(exc).__name__}"
        summary += f", HTTP {status})" if status else ")"
    if error_type is ModelAuthError:
        env = _expected_key_env(spec)
        summary += f"; set {env} to a valid key" if env else "; set the provider's API key"
    detail = _scrub(str(exc), secret)
    if len(detail) > _MAX_DETAIL:
        detail = detail[:_MAX_DETAIL] + "..."
    message = f"model {spec.name!r} ({spec.model}): {summary}: {detail}"
    return error_type(message, model=spec.name)
