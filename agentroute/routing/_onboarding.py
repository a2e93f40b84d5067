"""`describe_agent`: draft an agent's description from example requests, for onboarding.

TCAndon-Router onboards a new agent by appending its description to the routing prompt; the
description is drafted by an LLM from a few example requests. Review the draft before
registering it: routers read it verbatim.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Sequence

from agentroute.errors import ConfigurationError, ModelResponseError
from agentroute.models import ModelClient, complete_once
from agentroute.registry import ModelSpec

__all__ = ["describe_agent", "describe_agent_sync"]

Ask = Callable[[str], Awaitable[str]]

PROMPT = """\
You write the description of an agent for a router that reads only descriptions to decide \
which agent handles a request. Below are example requests this agent must handle{named}.
Write a concise, professional description (one to three sentences) of what the agent handles: \
the kinds of requests and their common intent, general enough to cover similar requests that \
are not listed, specific enough not to overlap with unrelated agents. Do not list the examples.
Output only:
<Description>...</Description>

# Example requests
{examples}"""

_DESCRIPTION = re.compile(r"<Description>(.*?)</Description>", re.IGNORECASE | re.DOTALL)


async def describe_agent(
    examples: Sequence[str],
    *,
    model: ModelSpec | Ask,
    client: ModelClient | None = None,
    name: str | None = None,
    max_examples: int = 20,
    max_tokens: int = 256,
) -> str:
    """Draft a description of an agent from example requests it should handle.

    Example:
        ```python
        spec = ar.ModelSpec(name="cheap", model="openai/gpt-4o-mini")
        text = await describe_agent(["where is my parcel", "track order 123"], model=spec)
        registry.agent(name="shipping", description=text)(shipping_fn)
        ```

    Args:
        examples: Example requests (the first `max_examples` distinct ones are used).
        model: The model to ask: a priced `ModelSpec` (called through `client`), or any
            `async (prompt) -> text` function, e.g. an agent's `ctx.complete`.
        client: The model client for a `ModelSpec`; default `LiteLLMClient()`.
        name: The agent's name, when known (gives the model context).
        max_examples: At most this many examples go into the prompt.
        max_tokens: Output cap.

    Returns:
        The description text.

    Raises:
        ConfigurationError: No non-empty example was given.
        ModelResponseError: The model returned no usable description.
        ModelCallError: The call failed.
    """
    texts = list(dict.fromkeys(e.strip() for e in examples if e and e.strip()))[:max_examples]
    if not texts:
        msg = "describe_agent needs at least one non-empty example request"
        raise ConfigurationError(msg)
    prompt = PROMPT.format(
        named=f" (its name is {name!r})" if name else "",
        examples="\n".join(f"- {t}" for t in texts),
    )
    if isinstance(model, ModelSpec):
        raw = await complete_once(model, prompt, client=client, max_tokens=max_tokens)
        label = model.name
    else:
        raw = await model(prompt)
        label = "callable"
    found = _DESCRIPTION.search(raw or "")
    text = " ".join((found.group(1) if found else (raw or "")).split())
    text = re.sub(r"</?Description>", "", text, flags=re.IGNORECASE).strip()
    if not text:
        msg = "the model returned no description"
        raise ModelResponseError(msg, model=label)
    return text


def describe_agent_sync(
    examples: Sequence[str],
    *,
    model: ModelSpec | Ask,
    client: ModelClient | None = None,
    name: str | None = None,
    max_examples: int = 20,
    max_tokens: int = 256,
) -> str:
    """`describe_agent` for synchronous code (not from inside a running event loop)."""
    return asyncio.run(
        describe_agent(
            examples,
            model=model,
            client=client,
            name=name,
            max_examples=max_examples,
            max_tokens=max_tokens,
        )
    )
