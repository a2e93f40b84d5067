"""`ReasoningRouter`: an LLM reasons, then names up to k agents or out-of-scope (TCAndon-Router).

The prompt is built at routing time from the registry's agent descriptions (an agent registered
after the router was built is included), in TCAndon-Router's format: the agents as XML, then the
required output,

```text
<Reason>why these agents</Reason>
<ID>agent_id</ID>            one line per chosen agent, or exactly <ID>oos</ID>
```

then the conversation. The output is parsed and validated with pydantic (`RouterOutput`): only
known ids, no duplicates, at most `max_agents`, `oos` alone, a reason present. An invalid output
gets one repair attempt (the model sees its answer and what was wrong); if that fails too, or the
model call fails, the configured `fallback` strategy decides. Raw outputs, the repair and the
fallback are all in the decision's evidence. The router can only return agent ids or
out-of-scope: whatever else the model writes is never shown to the user.

With many agents (more than `shortlist`, or a prompt that would not fit the model's context
window), a shortlister (default: `DescriptionRouter`) keeps the closest agents first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar
from xml.sax.saxutils import escape

import structlog
from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

from agentroute.errors import (
    BudgetExceeded,
    ConfigurationError,
    ModelCallError,
    ModelResponseError,
    did_you_mean,
)
from agentroute.registry import Registry
from agentroute.routing._describe import describe_strategy
from agentroute.routing._protocol import Candidate, RouteDecision, RoutingContext, RoutingStrategy

__all__ = ["OOS_ID", "ReasoningRouter", "RouterOutput", "parse_router_output"]

log = structlog.get_logger(__name__)

OOS_ID = "oos"
"""The id the model writes when no agent fits."""

_OOS_ALIASES = {"oos", "out_of_scope", "out-of-scope", "none"}
_ID = re.compile(r"<ID>(.*?)</ID>", re.IGNORECASE | re.DOTALL)
_REASON = re.compile(r"<Reason>(.*?)</Reason>", re.IGNORECASE | re.DOTALL)
_CHARS_PER_TOKEN = 4
_DEFAULT_CONTEXT_TOKENS = 8192

INSTRUCTIONS = """\
You are a Router Agent. Your only job is to decide which agents should handle the user's \
request, based on the conversation below. You never answer the user yourself.
You may select up to {k} agent(s). Select an agent only if its description clearly allows it \
to resolve the request; select several only when the request needs each of them. If no agent \
can handle the request, output {oos} in the ID tag."""

OUTPUT_FORMAT = """\
# Output Format
Answer with exactly this XML and nothing else:
<Reason>one or two sentences on why these agents</Reason>
<ID>agent_id</ID>
Write one <ID> line per selected agent (at most {k}), using the IDs of the Agent List \
verbatim, or the single line <ID>{oos}</ID> when no agent fits."""


class RouterOutput(BaseModel):
    """A validated router answer: the reasoning and the chosen ids (or `oos` alone).

    Validate with `context={"candidates": [...], "max_agents": k}`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    reason: str
    """The model's reasoning."""
    ids: tuple[str, ...]
    """The chosen agent ids, in the model's order; `("oos",)` for out of scope."""

    @field_validator("reason")
    @classmethod
    def _reason_present(cls, value: str) -> str:
        if not value.strip():
            msg = "the <Reason>…</Reason> tag is missing or empty"
            raise ValueError(msg)
        return value.strip()

    @field_validator("ids")
    @classmethod
    def _ids_valid(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        context = info.context or {}
        candidates: Sequence[str] = context.get("candidates", ())
        k: int = context.get("max_agents", 3)
        if not value:
            msg = "no <ID>…</ID> tag: answer with agent ids (or oos), not free text"
            raise ValueError(msg)
        by_lower = {c.lower(): c for c in candidates}
        out: list[str] = []
        for raw in value:
            item = raw.strip()
            if item.lower() in _OOS_ALIASES:
                out.append(OOS_ID)
                continue
            if item in candidates:
                out.append(item)
                continue
            if item.lower() in by_lower:
                out.append(by_lower[item.lower()])
                continue
            msg = f"unknown agent id {item!r}{did_you_mean(item, candidates)}"
            raise ValueError(msg)
        if len(set(out)) != len(out):
            msg = f"duplicate ids {out}: name each agent once"
            raise ValueError(msg)
        if OOS_ID in out and len(out) > 1:
            msg = f"{OOS_ID} must be the only id when no agent fits, got {out}"
            raise ValueError(msg)
        if len(out) > k:
            msg = f"{len(out)} ids {out}: choose at most {k}"
            raise ValueError(msg)
        return tuple(out)

    @property
    def out_of_scope(self) -> bool:
        """True when the model said no agent fits."""
        return self.ids == (OOS_ID,)


def parse_router_output(text: str, candidates: Sequence[str], max_agents: int) -> RouterOutput:
    """Parse and validate a router answer.

    Raises:
        ValueError: The text is empty, has no ids, or breaks a rule (the message says which;
            pydantic's `ValidationError` is a `ValueError`).
    """
    if not text or not text.strip():
        msg = "the model returned nothing"
        raise ValueError(msg)
    reason = _REASON.search(text)
    # Ids are read outside the reasoning: a reason may mention <ID> tags while explaining
    # the choice, and those are not choices.
    ids = _ID.findall(_REASON.sub(" ", text))
    return RouterOutput.model_validate(
        {"reason": reason.group(1) if reason else "", "ids": tuple(ids)},
        context={"candidates": tuple(candidates), "max_agents": max_agents},
    )


def _error_text(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            parts = [str(e.get("msg", "")).removeprefix("Value error, ") for e in errors()]
            return "; ".join(p for p in parts if p) or str(exc)
        except Exception:  # pragma: no cover - pydantic always gives a list of dicts
            return str(exc)
    return str(exc)


class ReasoningRouter:
    """Agent slot: an LLM picks up to `max_agents` agents (or out-of-scope), with reasons.

    Example:
        ```python
        router = ar.Router(
            registry,
            agent=ar.ReasoningRouter(model="strong", max_agents=3, fallback=ar.ExampleRouter()),
            refiner=ar.Refiner(model="strong"),
        )
        ```

    Args:
        model: Registry name of the routing model; `None` = the router's default model.
        max_agents: At most this many agents per request (TCAndon-Router uses 3).
        fallback: Strategy deciding when the model's answer stays invalid after one repair,
            or the call fails (a strategy, or its graph-YAML mapping `{strategy, params}`).
            `None` = abstain (the runtime then treats the request as out of scope).
        repair: Ask once more, showing the model its invalid answer and the rule it broke.
        shortlist: With more candidates than this, keep only the best `shortlist` (by the
            shortlister) in the prompt.
        shortlister: Strategy ranking candidates for the shortlist (its `candidates` order);
            default `DescriptionRouter()`.
        context_tokens: Context window to respect; default the model's `context_window`
            from the registry, else 8192.
        max_tokens: Output cap of the routing call.
        temperature: Sampling temperature of the routing call.
        instructions: Replaces the opening instructions (`{k}` and `{oos}` are filled in).
    """

    name: ClassVar[str] = "reasoning"
    version: ClassVar[str] = "1"

    def __init__(
        self,
        model: str | None = None,
        *,
        max_agents: int = 3,
        fallback: RoutingStrategy | Mapping[str, Any] | None = None,
        repair: bool = True,
        shortlist: int = 40,
        shortlister: RoutingStrategy | Mapping[str, Any] | None = None,
        context_tokens: int | None = None,
        max_tokens: int = 512,
        temperature: float | None = 0.0,
        instructions: str | None = None,
    ) -> None:
        if max_agents < 1:
            msg = f"ReasoningRouter max_agents must be >= 1, got {max_agents}"
            raise ConfigurationError(msg)
        if shortlist < 1:
            msg = f"ReasoningRouter shortlist must be >= 1, got {shortlist}"
            raise ConfigurationError(msg)
        self.model = model
        self.max_agents = max_agents
        self.fallback = _strategy(fallback, "ReasoningRouter.fallback")
        self.repair = repair
        self.shortlist = shortlist
        self._shortlister = _strategy(shortlister, "ReasoningRouter.shortlister")
        self.context_tokens = context_tokens
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.instructions = instructions or INSTRUCTIONS

    @property
    def shortlister(self) -> RoutingStrategy:
        """The strategy that ranks candidates for the shortlist."""
        if self._shortlister is None:
            from agentroute.routing._description import DescriptionRouter

            self._shortlister = DescriptionRouter()
        return self._shortlister

    def params(self) -> dict[str, Any]:
        """Parameters for the trace."""
        return {
            "model": self.model,
            "max_agents": self.max_agents,
            "fallback": describe_strategy(self.fallback) if self.fallback else None,
            "repair": self.repair,
            "shortlist": self.shortlist,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }

    def validate(self, registry: Registry, agents: Sequence[str]) -> None:
        """Compile-time hook: the routing model exists; the fallback's own checks pass.

        Raises:
            ConfigurationError: Unknown model (with a suggestion), or the fallback's error.
        """
        if self.model is not None and self.model not in registry.models:
            msg = (
                f"ReasoningRouter model {self.model!r} is not registered"
                f"{did_you_mean(self.model, registry.models)}; add it with registry.model(...)"
            )
            raise ConfigurationError(msg)
        check = getattr(self.fallback, "validate", None)
        if callable(check):
            check(registry, agents)

    # -- prompt ------------------------------------------------------------------------------------

    def _window(self, registry: Registry) -> int:
        if self.context_tokens is not None:
            return self.context_tokens
        if self.model is not None and self.model in registry.models:
            window = registry.models[self.model].context_window
            if window:
                return window
        return _DEFAULT_CONTEXT_TOKENS

    def build_prompt(self, ctx: RoutingContext, agents: Sequence[str]) -> str:
        """The routing prompt for `agents`, from their descriptions in the registry now."""
        lines = [
            self.instructions.format(k=self.max_agents, oos=OOS_ID),
            "",
            "# Agent List",
            "<Agents>",
        ]
        for agent in agents:
            spec = ctx.registry.agents.get(agent)
            desc = " ".join((spec.description if spec else "").split())
            lines.append(
                f"<Agent><ID>{escape(agent)}</ID><Description>{escape(desc)}</Description></Agent>"
            )
        lines += ["</Agents>", "", OUTPUT_FORMAT.format(k=self.max_agents, oos=OOS_ID), ""]
        lines.append("# Chat History")
        for view in ctx.history:
            if view.answer:
                lines.append(f"assistant ({', '.join(view.agents)}): {view.answer}")
        lines.append(f"user: {ctx.task}")
        return "\n".join(lines)

    async def _shortlist(
        self, ctx: RoutingContext
    ) -> tuple[list[str], str, dict[str, float | None], dict[str, Any]]:
        """The candidates that go into the prompt, that prompt, their shortlist scores, evidence.

        Each prompt is built once: the one measured to decide whether it fits is the one sent.
        """
        agents = list(ctx.candidates)
        budget_tokens = int(self._window(ctx.registry) * 0.75) - self.max_tokens

        def fits(text: str) -> bool:
            return len(text) // _CHARS_PER_TOKEN <= budget_tokens

        full = self.build_prompt(ctx, agents)
        if len(agents) <= self.shortlist and fits(full):
            return agents, full, {}, {"shortlisted": False}
        decision = await self.shortlister.route(ctx)
        ranked = [c.name for c in decision.candidates if c.name in ctx.candidates]
        ranked += [a for a in decision.agents if a not in ranked and a in ctx.candidates]
        # A shortlister that abstains or ranks too few (e.g. no agent has a description) must
        # not leave the prompt short: fill up with the remaining candidates, in order.
        ranked += [a for a in agents if a not in ranked]
        scores = {c.name: c.score for c in decision.candidates}
        keep = ranked[: self.shortlist]
        prompt = full if keep == agents else self.build_prompt(ctx, keep)
        while len(keep) > 1 and not fits(prompt):
            keep = keep[: max(1, len(keep) * 3 // 4)]
            prompt = self.build_prompt(ctx, keep)
        info = {
            "shortlisted": True,
            "shortlister": describe_strategy(self.shortlister)["strategy"],
            "from": len(agents),
            "kept": len(keep),
        }
        return keep, prompt, {a: scores.get(a) for a in keep}, info

    # -- routing -----------------------------------------------------------------------------------

    async def route(self, ctx: RoutingContext) -> RouteDecision:
        """Ask the model; validate; repair once; else fall back. Never answers the user."""
        if not ctx.candidates:
            return RouteDecision.abstain("no candidate agents")
        evidence: dict[str, Any] = {"model": self.model, "attempts": [], "repair": False}
        try:
            agents, prompt, scores, info = await self._shortlist(ctx)
        except BudgetExceeded:
            raise  # a budget stop ends the run as budget_exhausted, not out of scope
        except Exception as exc:  # the shortlister's embedder may be missing or broken
            evidence["shortlist_error"] = f"{type(exc).__name__}: {exc}"
            return await self._fall_back(ctx, evidence, f"shortlisting failed ({exc})")
        evidence.update(info)
        evidence["prompt_agents"] = len(agents)
        messages: list[dict[str, str]] = [{"role": "user", "content": prompt}]
        tries = 2 if self.repair else 1
        last_error = ""
        for attempt in range(tries):
            empty_error: ModelResponseError | None = None
            try:
                raw = await ctx.complete(
                    messages,
                    model=self.model,
                    max_tokens=self.max_tokens,
                    temperature=self.temperature,
                )
            except ModelResponseError as exc:  # an empty or unusable answer: worth a repair
                raw, empty_error = "", exc
            except ModelCallError as exc:
                evidence["attempts"].append({"raw_output": None, "error": _error_text(exc)})
                return await self._fall_back(ctx, evidence, f"the routing call failed ({exc})")
            try:
                if empty_error is not None:
                    msg = f"the model returned nothing ({empty_error})"
                    raise ValueError(msg)
                parsed = parse_router_output(raw, agents, self.max_agents)
            except ValueError as exc:
                last_error = _error_text(exc)
                evidence["attempts"].append({"raw_output": raw, "error": last_error})
                log.debug("reasoning_router.invalid", error=last_error, attempt=attempt)
                if attempt + 1 < tries:
                    evidence["repair"] = True
                    messages += [
                        {"role": "assistant", "content": raw or "(empty)"},
                        {"role": "user", "content": _repair_prompt(last_error, agents, self)},
                    ]
                continue
            evidence["attempts"].append({"raw_output": raw, "error": None})
            return self._decision(parsed, raw, agents, scores, evidence)
        return await self._fall_back(
            ctx, evidence, f"invalid router output after {tries} attempt(s): {last_error}"
        )

    def _decision(
        self,
        parsed: RouterOutput,
        raw: str,
        agents: Sequence[str],
        scores: Mapping[str, float | None],
        evidence: dict[str, Any],
    ) -> RouteDecision:
        evidence.update(
            raw_output=raw,
            reasoning=parsed.reason,
            ids=list(parsed.ids),
            conflict=len(parsed.ids) > 1,
            fallback=None,
        )
        chosen = set(parsed.ids)
        cands = [
            Candidate(
                name=a, score=1.0 if a in chosen else 0.0, detail={"shortlist": scores.get(a)}
            )
            if scores
            else Candidate(name=a, score=1.0 if a in chosen else 0.0)
            for a in agents
        ]
        if parsed.out_of_scope:
            return RouteDecision.out_of_scope(parsed.reason, cands, **evidence)
        return RouteDecision.to(
            *parsed.ids, reason=parsed.reason, candidates=cands, evidence=evidence
        )

    async def _fall_back(
        self, ctx: RoutingContext, evidence: dict[str, Any], why: str
    ) -> RouteDecision:
        evidence["raw_output"] = next(
            (a["raw_output"] for a in reversed(evidence["attempts"]) if a["raw_output"]), None
        )
        if self.fallback is None:
            evidence["fallback"] = {"strategy": None}
            return RouteDecision.abstain(f"{why}; no fallback configured", **evidence)
        label = describe_strategy(self.fallback)["strategy"]
        try:
            decision = await self.fallback.route(ctx)
        except BudgetExceeded:
            raise
        except Exception as exc:
            evidence["fallback"] = {"strategy": label, "error": f"{type(exc).__name__}: {exc}"}
            return RouteDecision.abstain(f"{why}; fallback {label!r} failed: {exc}", **evidence)
        evidence["fallback"] = {
            "strategy": label,
            "outcome": decision.outcome,
            "reason": decision.reason,
            "evidence": decision.evidence,
        }
        return decision.model_copy(
            update={
                "reason": f"{why}; fallback {label!r}: {decision.reason}",
                "evidence": evidence,
            }
        )


def _repair_prompt(error: str, agents: Sequence[str], router: ReasoningRouter) -> str:
    shown = ", ".join(agents[:60]) + (" ..." if len(agents) > 60 else "")
    return (
        f"Your answer was invalid: {error}.\n"
        "Answer again in exactly this format and nothing else:\n"
        "<Reason>why these agents</Reason>\n<ID>agent_id</ID>\n"
        f"with at most {router.max_agents} distinct ids chosen from: {shown}; "
        f"or the single line <ID>{OOS_ID}</ID> if none fits."
    )


def _strategy(value: Any, where: str) -> RoutingStrategy | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        from agentroute.routing._catalog import build_strategy

        return build_strategy(value, where)
    if not callable(getattr(value, "route", None)):
        msg = f"{where} needs a routing strategy, got {type(value).__name__}"
        raise ConfigurationError(msg)
    return value  # type: ignore[no-any-return]
