"""`BudgetSwitch`: the model slot's budget-aware switch between model tiers (BoPO / BAAR).

At every step of every branch it picks a tier — `cheap`, `strong`, or any number of tiers
ordered by price — by a policy, then makes sure the run can pay for it:

| policy | picks |
|---|---|
| `always(tier)` | that tier |
| `first_strong(n)` | the top tier for the first `n` steps, then the cheapest (BoPO's First-Large) |
| `threshold(scorer, t)` | the tier whose threshold the difficulty score passes |
| `cascade(verifier)` | the cheapest tier; `cascade_complete` escalates when the verifier rejects |

Before answering, the chosen tier's worst-case cost is checked against the run's ledger (USD and
strong calls; for a shared `Budget(key=...)` the key's totals). An unaffordable tier is
downgraded to the next cheaper affordable one (`downgraded: true` in the evidence). When nothing
is affordable the cheapest tier is chosen and marked `exhausted`: its reservation is refused, so
the run ends with status `budget_exhausted`. The ledger's reservation is the hard guarantee; this
check only avoids asking for what cannot be paid.

Every decision's evidence records the policy, the score and its threshold, the version of the
scorer's online memory the score was computed from (`memory_version`; `None` for scorers without
a stored memory), the budget before the call and after it at the estimated cost, and the
estimated cost; the model-call records of the same step and branch carry the estimated and
actual cost of each call.
"""

from __future__ import annotations

import asyncio
import inspect
import math
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import structlog

from agentroute.errors import BudgetExceeded, ConfigurationError, did_you_mean
from agentroute.models import resolve_prices
from agentroute.models._budget import Budget, BudgetSnapshot, ledger_for_run
from agentroute.registry import ModelSpec, Registry
from agentroute.routing._difficulty import (
    DifficultyScore,
    DifficultyScorer,
    build_scorer,
    fit_from_rows,
    load_outcomes,
)
from agentroute.routing._difficulty_eval import calibrate_threshold
from agentroute.routing._protocol import Candidate, Outcome, RouteDecision, RoutingContext
from agentroute.routing.embeddings import Embedder
from agentroute.stores import TraceStore

__all__ = ["BudgetSwitch", "CascadeResult", "Verifier"]

log = structlog.get_logger(__name__)

Verifier = Callable[[str, str], "float | bool | Awaitable[float | bool]"]
"""`verifier(task, answer)` → confidence in [0, 1] (or a bool); may be async."""

_METADATA_KEY = "budget_switch"
_CHARS_PER_TOKEN = 3  # the ledger's own (upper-leaning) estimate


@dataclass(frozen=True)
class CascadeResult:
    """What `BudgetSwitch.cascade_complete` did: the answer used and why.

    Put `evidence` in the agent's result metadata
    (`AgentResult(output=r.answer, metadata={"cascade": r.evidence})`) so the verdict sits in
    the trace beside the two model-call records.
    """

    answer: str
    escalated: bool
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Choice:
    index: int
    why: str
    evidence: dict[str, Any]


class BudgetSwitch:
    """Budget-aware model-tier switch for the model slot.

    Build it with a policy constructor (`always`, `first_strong`, `threshold`, `cascade`) or
    from graph YAML: `{strategy: budget-switch, params: {policy: threshold, scorer: knn, t: 0.6,
    train: outcomes.jsonl}}`.

    Per-run knob (no refit): run metadata `{"budget_switch": {"t": 0.7}}` sets the threshold;
    `{"budget_switch": {"strong_share": 0.2}}` picks the threshold that sends about that share of
    prompts up, from the scores of the training prompts.

    Args:
        policy: `always`, `first_strong`, `threshold` or `cascade`.
        tier: `always`: the tier to use.
        n: `first_strong`: steps on the top tier.
        scorer: `threshold`: `ensemble` (default), `knn`, `logistic`, or a `DifficultyScorer`.
        t: `threshold`: route up when the score exceeds `t`; with more than two tiers, one
            ascending threshold per boundary.
        tiers: Tier names from cheapest to strongest; default every tier of the registry's
            models, ordered by price.
        train: A JSON-lines outcomes file (`{"text", "cheap", "strong"}`) to fit the scorer on
            when the router compiles.
        embedder: Embedder for a scorer built by name (`minilm`, `hashing`, or an object).
        cold_start: Tier to use while the scorer has no data; `None` refuses to compile.
        verifier: `cascade`: `verifier(task, answer)` → confidence, or a registry model name
            asked to grade the answer.
        accept: `cascade`: confidence at or above which the cheap answer stands.
        learn_online: Update the scorer from feedback scores of runs it routed.
        key: Learned-state key of the scorer's online memory in the router's trace store
            (scorers that keep one, like `knn` and `ensemble`). Routers — in this process or
            others — whose switches share the store and the key learn into one memory, and
            a new process starts with what was learned. Default
            `budget-switch/memory/<cheapest model>..<strongest model>/<embedder>` (the LiteLLM
            ids of the first model of the cheapest and of the strongest tier, and the scorer's
            embedder): outcomes describe a pair of models, so switches over the same pair share
            them and switches over different pairs never mix them; the embedder keeps memories
            in one vector space.
    """

    name: ClassVar[str] = "budget-switch"
    version: ClassVar[str] = "1"

    def __init__(
        self,
        policy: str = "threshold",
        *,
        tier: str | None = None,
        n: int = 1,
        scorer: str | DifficultyScorer = "ensemble",
        t: float | Sequence[float] = 0.5,
        tiers: Sequence[str] | None = None,
        train: str | Path | None = None,
        embedder: Embedder | str | None = None,
        cold_start: str | None = None,
        verifier: Verifier | str | None = None,
        accept: float = 0.5,
        learn_online: bool = True,
        key: str | None = None,
    ) -> None:
        if policy not in _POLICIES:
            msg = f"unknown BudgetSwitch policy {policy!r}{did_you_mean(policy, _POLICIES)}"
            raise ConfigurationError(msg)
        if policy == "always" and not tier:
            msg = "BudgetSwitch.always needs a tier, e.g. BudgetSwitch.always('cheap')"
            raise ConfigurationError(msg)
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            msg = f"BudgetSwitch.first_strong needs n >= 0 steps, got {n!r}"
            raise ConfigurationError(msg)
        thresholds = [float(t)] if isinstance(t, int | float) else [float(x) for x in t]
        if (
            not thresholds
            or any(not math.isfinite(x) for x in thresholds)
            or (thresholds != sorted(thresholds))
        ):
            msg = f"BudgetSwitch: t must be a finite number or an ascending list, got {t!r}"
            raise ConfigurationError(msg)
        if not 0.0 <= accept <= 1.0:
            msg = f"BudgetSwitch.cascade: accept must be within [0, 1], got {accept}"
            raise ConfigurationError(msg)
        self.policy = policy
        self.tier = tier
        self.n = n
        self.thresholds = thresholds
        self.tiers_given = tuple(tiers) if tiers is not None else None
        self.train = str(train) if train is not None else None
        self.cold_start = cold_start
        self.verifier = verifier
        self.accept = accept
        self.learn_online = learn_online
        self.key = key
        self._memory_key: str | None = None
        self._store: TraceStore | None = None
        self.scorer_name = scorer if isinstance(scorer, str) else getattr(scorer, "name", "custom")
        self._scorer_ref = scorer
        self._embedder = embedder
        self._scorer: DifficultyScorer | None = None
        self._calibration: list[float] = []
        self._warned_uncalibrated = False
        self._model_tiers: dict[str, str | None] = {}
        self._tiers: tuple[str, ...] | None = None
        self._tier_models: dict[str, str] = {}
        self._score_cache: OrderedDict[str, DifficultyScore] = OrderedDict()
        self._score_epoch = 0  # bumped whenever learned state changes every score
        self._routed: OrderedDict[str, tuple[str, bool]] = OrderedDict()

    # -- constructors ------------------------------------------------------------------------

    @classmethod
    def always(cls, tier: str, **options: Any) -> BudgetSwitch:
        """Always the given tier (a boundary baseline: AlwaysSmall / AlwaysLarge)."""
        return cls("always", tier=tier, **options)

    @classmethod
    def first_strong(cls, n: int, **options: Any) -> BudgetSwitch:
        """The top tier for the first `n` steps of a run, then the cheapest."""
        return cls("first_strong", n=n, **options)

    @classmethod
    def threshold(
        cls,
        scorer: str | DifficultyScorer = "ensemble",
        t: float | Sequence[float] = 0.5,
        **options: Any,
    ) -> BudgetSwitch:
        """Route up when the scorer's difficulty score exceeds `t`."""
        return cls("threshold", scorer=scorer, t=t, **options)

    @classmethod
    def cascade(
        cls, verifier: Verifier | str, *, accept: float = 0.5, **options: Any
    ) -> BudgetSwitch:
        """Answer on the cheapest tier; `cascade_complete` escalates when `verifier` rejects."""
        return cls("cascade", verifier=verifier, accept=accept, **options)

    # -- description -------------------------------------------------------------------------

    def params(self) -> dict[str, Any]:
        """The strategy's parameters (recorded with every decision)."""
        out: dict[str, Any] = {"policy": self.policy}
        if self.policy == "always":
            out["tier"] = self.tier
        elif self.policy == "first_strong":
            out["n"] = self.n
        elif self.policy == "threshold":
            out["t"] = self.thresholds[0] if len(self.thresholds) == 1 else self.thresholds
            out["scorer"] = self._scorer.params() if self._scorer else self.scorer_name
            if self.train:
                out["train"] = self.train
            if self.learn_online:
                out["key"] = self.key or self._memory_key
        else:
            out["accept"] = self.accept
            out["verifier"] = self.verifier if isinstance(self.verifier, str) else "callable"
        if self.tiers_given:
            out["tiers"] = list(self.tiers_given)
        if self.cold_start:
            out["cold_start"] = self.cold_start
        return out

    @property
    def scorer(self) -> DifficultyScorer:
        """The difficulty scorer (built on first use)."""
        if self._scorer is None:
            self._scorer = build_scorer(self._scorer_ref, embedder=self._embedder)
        return self._scorer

    # -- compile time ------------------------------------------------------------------------

    def bind_store(self, store: TraceStore) -> None:
        """Keep the scorer's online memory in `store` (the router's), bound at `validate`."""
        self._store = store

    def refresh(self) -> bool:
        """Re-read the scorer's online memory when another process stored a newer version.

        Updates (feedback) already take in what others stored; call this to see their outcomes
        without learning one.

        Returns:
            Whether a newer version was loaded.

        Raises:
            StoreError: The store failed.
        """
        refresh = getattr(self.scorer, "refresh", None)
        if not callable(refresh) or not refresh():
            return False
        self._clear_scores()
        return True

    def validate(self, registry: Registry, agents: Sequence[str] = ()) -> None:
        """Check tiers, prices and the scorer's data; fit on `train` when given.

        Raises:
            ConfigurationError: An unknown tier, an unpriced model, fewer thresholds than tier
                boundaries, or a threshold policy whose scorer has no data and no `cold_start`.
        """
        del agents
        tiers = self._resolve_tiers(registry)
        self._model_tiers = {m.name: m.tier for m in registry.models.values() if m.tier in tiers}
        for name in (self.tier, self.cold_start):
            if name is not None and name not in tiers:
                msg = (
                    f"budget-switch: no model has tier {name!r}{did_you_mean(name, tiers)}; "
                    f"the registry's tiers are {list(tiers)}"
                )
                raise ConfigurationError(msg)
        if isinstance(self.verifier, str) and self.verifier not in registry.models:
            msg = (
                f"budget-switch: verifier model {self.verifier!r} is not registered"
                f"{did_you_mean(self.verifier, registry.models)}"
            )
            raise ConfigurationError(msg)
        if self.policy == "cascade" and self.verifier is None:
            msg = "budget-switch cascade needs a verifier (a callable or a model name)"
            raise ConfigurationError(msg)
        if self.policy == "threshold":
            if len(self.thresholds) not in (1, len(tiers) - 1):
                msg = (
                    f"budget-switch: {len(tiers)} tiers {list(tiers)} need "
                    f"{len(tiers) - 1} thresholds, got {self.thresholds}"
                )
                raise ConfigurationError(msg)
            if self.train and not self.scorer.fitted:
                self.fit_file(self.train)
            bind = getattr(self.scorer, "bind_store", None)
            if self.learn_online and self._store is not None and callable(bind):
                # The memory learned from feedback lives in the store, versioned, so it
                # survives the process and is shared by every router on the same store and key.
                key = self.key or _default_memory_key(registry, tiers, self.scorer)
                try:
                    bind(self._store, key)
                except ValueError as exc:
                    msg = (
                        f"budget-switch: learned state {key!r} is not a usable kNN memory "
                        f"({exc}); pass another key=..."
                    )
                    raise ConfigurationError(msg) from exc
                self._memory_key = key
                self._clear_scores()
            if not self.scorer.fitted and self.cold_start is None:
                msg = (
                    f"budget-switch: the {self.scorer_name!r} scorer has no data; pass "
                    "train='outcomes.jsonl', fit the scorer first, or set cold_start='cheap'"
                )
                raise ConfigurationError(msg)

    def _resolve_tiers(self, registry: Registry) -> tuple[str, ...]:
        if self._tiers is not None:
            return self._tiers
        present: dict[str, list[ModelSpec]] = {}
        for spec in registry.models.values():
            present.setdefault(spec.tier, []).append(spec)
        if not present:
            msg = "budget-switch needs models: register them with registry.model(..., tier=...)"
            raise ConfigurationError(msg)
        if self.tiers_given is not None:
            for name in self.tiers_given:
                if name not in present:
                    msg = (
                        f"budget-switch: no model has tier {name!r}"
                        f"{did_you_mean(name, present)}; the registry's tiers are "
                        f"{sorted(present)}"
                    )
                    raise ConfigurationError(msg)
            tiers = self.tiers_given
        else:
            # Cheapest first, by the price of a typical call on the tier's first model.
            def price(tier: str) -> float:
                spec = resolve_prices(present[tier][0])
                return spec.cost_usd(1000, 500)

            tiers = tuple(sorted(present, key=lambda t: (price(t), t)))
        for name in tiers:
            resolve_prices(present[name][0])  # refuses unpriced models, never treats them free
        self._tiers = tiers
        return tiers

    def fit_file(self, path: str | Path) -> BudgetSwitch:
        """Fit the scorer on a JSON-lines outcomes file; keeps its scores for calibration."""
        rows = load_outcomes(path)
        fit_from_rows(self.scorer, rows)
        self._calibration = [s.value for s in self.scorer.score([r.text for r in rows])]
        return self

    def calibrate(
        self,
        texts: Sequence[str],
        *,
        strong_share: float | None = None,
        budget_usd: float | None = None,
        cheap_cost: float = 0.0,
        strong_cost: float = 1.0,
    ) -> float:
        """Set `t` to meet a strong-call share or a mean budget per prompt on held-out texts.

        Also keeps the held-out scores, so run metadata `strong_share` maps onto them.

        Returns:
            The threshold chosen.
        """
        scores = [s.value for s in self.scorer.score(list(texts))]
        t = calibrate_threshold(
            scores,
            strong_share=strong_share,
            budget_usd=budget_usd,
            cheap_cost=cheap_cost,
            strong_cost=strong_cost,
        )
        self._calibration = scores
        self.thresholds = [*self.thresholds[:-1], t]
        return t

    @property
    def memory_key(self) -> str | None:
        """The learned-state key the scorer's online memory is bound to (`None` until bound)."""
        return self._memory_key

    # -- routing -----------------------------------------------------------------------------

    async def route(self, ctx: RoutingContext) -> RouteDecision:
        """Pick a tier by the policy, downgrade it to what the budget affords, pick its model."""
        tiers = self._resolve_tiers(ctx.registry)
        models = {t: self._model_for(ctx, t) for t in tiers}
        self._tier_models.update(models)
        choice = await _POLICIES[self.policy](self, ctx, tiers)
        snapshot = await self._snapshot(ctx)
        strong_tiers = self._strong_tiers(ctx)
        estimates = {
            t: _estimate(resolve_prices(ctx.registry.get_model(m)), ctx) for t, m in models.items()
        }
        # A tier whose model's reservation was refused this step (the runtime routes again):
        # the estimate missed part of the real request (a system or skills prompt).
        affordable = {
            t: models[t] not in ctx.refused
            and snapshot.affords(estimates[t], strong=t in strong_tiers)
            for t in tiers
        }
        index = choice.index
        while index > 0 and not affordable[tiers[index]]:
            index -= 1
        exhausted = not affordable[tiers[index]]
        chosen = tiers[index]
        downgraded = index != choice.index
        estimate = estimates[chosen]
        after = _after(snapshot, estimate, strong=chosen in strong_tiers)
        reason = choice.why
        if downgraded:
            reason += f"; downgraded from {tiers[choice.index]!r}: the budget cannot pay for it"
        if exhausted:
            reason += "; nothing is affordable: the call will be refused (budget exhausted)"
        evidence = {
            "policy": self.policy,
            "tier_wanted": tiers[choice.index],
            "tier": chosen,
            "tiers": list(tiers),
            "downgraded": downgraded,
            "budget_override": downgraded,
            "exhausted": exhausted,
            "estimated_cost_usd": round(estimate, 9),
            "budget_before": snapshot.as_dict(),
            "budget_after_estimated": after.as_dict(),
            **choice.evidence,
        }
        self._remember(ctx, chosen in strong_tiers)
        candidates = [
            Candidate(
                name=models[t],
                score=float(i),
                detail={
                    "tier": t,
                    "estimated_cost_usd": round(estimates[t], 9),
                    "affordable": affordable[t],
                },
            )
            for i, t in enumerate(tiers)
        ]
        return RouteDecision.with_model(
            models[chosen], reason=reason, candidates=candidates, evidence=evidence
        )

    def _model_for(self, ctx: RoutingContext, tier: str) -> str:
        names = [m.name for m in ctx.registry.models_in_tier(tier) if m.name in ctx.candidates]
        if not names:
            msg = (
                f"budget-switch: no candidate model in tier {tier!r} (candidates {ctx.candidates})"
            )
            raise ConfigurationError(msg)
        return names[0]

    @staticmethod
    async def _snapshot(ctx: RoutingContext) -> BudgetSnapshot:
        ledger = ledger_for_run(ctx.run_id)
        if ledger is not None:
            # A shared key's totals come from the database: keep the query off the event loop.
            if ledger.blocking:
                return await asyncio.to_thread(ledger.snapshot)
            return ledger.snapshot()
        b = ctx.budget
        return BudgetSnapshot(b.limit_usd, b.spent_usd, b.reserved_usd)

    @staticmethod
    def _strong_tiers(ctx: RoutingContext) -> tuple[str, ...]:
        ledger = ledger_for_run(ctx.run_id)
        return ledger.budget.strong_tiers if ledger is not None else ("strong",)

    def _remember(self, ctx: RoutingContext, strong: bool) -> None:
        if not self.learn_online:
            return
        _, was_strong = self._routed.get(ctx.run_id, (ctx.task, False))
        self._routed[ctx.run_id] = (ctx.task, was_strong or strong)
        self._routed.move_to_end(ctx.run_id)
        while len(self._routed) > 10_000:
            self._routed.popitem(last=False)

    # -- policies ----------------------------------------------------------------------------

    async def _always(self, ctx: RoutingContext, tiers: tuple[str, ...]) -> _Choice:
        assert self.tier is not None
        return _Choice(tiers.index(self.tier), f"always {self.tier!r}", {})

    async def _first_strong(self, ctx: RoutingContext, tiers: tuple[str, ...]) -> _Choice:
        top = ctx.step < self.n
        why = f"step {ctx.step} {'<' if top else '>='} n={self.n}"
        return _Choice(len(tiers) - 1 if top else 0, why, {"n": self.n, "step": ctx.step})

    async def _threshold(self, ctx: RoutingContext, tiers: tuple[str, ...]) -> _Choice:
        thresholds, source = self._thresholds_for(ctx, len(tiers))
        if not self.scorer.fitted:
            assert self.cold_start is not None
            return _Choice(
                tiers.index(self.cold_start),
                f"cold start: the scorer has no data yet, using {self.cold_start!r}",
                {
                    "score": None,
                    "threshold": thresholds,
                    "threshold_source": source,
                    "memory_version": None,
                },
            )
        score = await self._score(ctx.task)
        index = sum(score.value > t for t in thresholds)
        index = min(index, len(tiers) - 1)
        shown = thresholds[0] if len(thresholds) == 1 else thresholds
        why = f"score {score.value:.3f} {'>' if index else '<='} t={shown}"
        return _Choice(
            index,
            why,
            {
                "score": round(score.value, 6),
                "p_cheap": round(score.p_cheap, 6),
                "p_strong": round(score.p_strong, 6),
                "threshold": shown,
                "threshold_source": source,
                # Taken from the score, not the scorer: a cached score names the memory it
                # was computed from even if the scorer has moved on since.
                "memory_version": score.memory_version,
                "scorer": self.scorer_name,
                "scorer_evidence": score.evidence,
            },
        )

    async def _cascade(self, ctx: RoutingContext, tiers: tuple[str, ...]) -> _Choice:
        return _Choice(
            0,
            "cascade: answer on the cheapest tier first; escalate if the verifier rejects",
            {"escalate_to": tiers[-1], "accept": self.accept},
        )

    def _thresholds_for(self, ctx: RoutingContext, n_tiers: int) -> tuple[list[float], str]:
        base = list(self.thresholds)
        if len(base) == 1 and n_tiers > 2:
            base = base * (n_tiers - 1)
        knob = ctx.metadata.get(_METADATA_KEY)
        if not isinstance(knob, Mapping):
            return base, "params"
        if isinstance(knob.get("t"), int | float):
            top = float(knob["t"])
            return [min(x, top) for x in base[:-1]] + [top], "metadata.t"
        share = knob.get("strong_share")
        if isinstance(share, int | float) and self._calibration:
            top = calibrate_threshold(self._calibration, strong_share=float(share))
            return [min(x, top) for x in base[:-1]] + [top], "metadata.strong_share"
        if isinstance(share, int | float):
            # Said in the decision (and logged once), never silently: the knob needs scores.
            if not self._warned_uncalibrated:
                self._warned_uncalibrated = True
                log.warning(
                    "budget_switch_strong_share_ignored",
                    hint="fit with train=/fit_file(...) or call calibrate(texts) first",
                )
            return base, "params (strong_share ignored: no calibration scores)"
        return base, "params"

    def _clear_scores(self) -> None:
        self._score_cache.clear()
        self._score_epoch += 1

    async def _score(self, text: str) -> DifficultyScore:
        cached = self._score_cache.get(text)
        if cached is not None:
            return cached
        epoch = self._score_epoch
        # Embedding is CPU work: keep it off the event loop.
        score = (await asyncio.to_thread(self.scorer.score, [text]))[0]
        if epoch != self._score_epoch:
            return score  # learned state changed meanwhile: use it once, never cache it
        self._score_cache[text] = score
        while len(self._score_cache) > 4096:
            self._score_cache.popitem(last=False)
        return score

    # -- cascade -----------------------------------------------------------------------------

    async def cascade_complete(self, ctx: Any, prompt: str, **kwargs: Any) -> CascadeResult:
        """Answer on the routed (cheap) model; escalate to the top tier when rejected.

        Use inside an agent: `r = await switch.cascade_complete(ctx, prompt)`. Both answers are
        model-call records of the step; the verdict is in `r.evidence`. When the budget cannot
        pay for the escalation the cheap answer stands (`escalation_skipped` says why).

        Args:
            ctx: The agent's `AgentContext`.
            prompt: The prompt.
            **kwargs: Passed to `ctx.complete` (system, max_tokens, temperature).

        Raises:
            ConfigurationError: The switch has not routed this run's model slot.
        """
        cheap_answer = await ctx.complete(prompt, **kwargs)
        verdict = await self._verify(ctx, prompt, cheap_answer)
        evidence: dict[str, Any] = {
            "cheap_model": ctx.model,
            "cheap_answer": cheap_answer,
            "verdict": verdict,
            "accept": self.accept,
        }
        if verdict >= self.accept:
            return CascadeResult(cheap_answer, False, {**evidence, "escalated": False})
        tiers = self._tiers or ()
        strong_model = self._tier_models.get(tiers[-1]) if tiers else None
        if strong_model is None:
            msg = "cascade_complete needs the BudgetSwitch to be the router's model strategy"
            raise ConfigurationError(msg)
        try:
            strong_answer = await ctx.complete(prompt, model=strong_model, **kwargs)
        except BudgetExceeded as exc:
            evidence.update(escalated=False, escalation_skipped=f"budget: {exc}")
            return CascadeResult(cheap_answer, False, evidence)
        evidence.update(escalated=True, strong_model=strong_model, strong_answer=strong_answer)
        return CascadeResult(strong_answer, True, evidence)

    async def _verify(self, ctx: Any, task: str, answer: str) -> float:
        verifier = self.verifier
        if isinstance(verifier, str):
            reply = await ctx.complete(
                "Rate how likely this answer is correct and complete, from 0 to 1. "
                "Reply with the number only.\n\n"
                f"Question:\n{task}\n\nAnswer:\n{answer}",
                model=verifier,
                max_tokens=8,
            )
            return _parse_confidence(reply)
        assert verifier is not None
        result = verifier(task, answer)
        if inspect.isawaitable(result):
            result = await result
        return float(result)

    # -- learning ----------------------------------------------------------------------------

    async def learn(self, outcome: Outcome) -> None:
        """Feed a scored run back into the scorer.

        Runs that used a strong tier label `strong`, others `cheap`; runs without a feedback
        score are ignored.
        """
        if not self.learn_online or outcome.score is None or self.policy != "threshold":
            return
        routed = self._routed.pop(outcome.run_id, None)
        if routed is None:
            # Routed by another process, or before a restart: the trace says what ran.
            routed = self._routed_from(outcome)
            if routed is None:
                return
        text, strong = routed
        try:
            if strong:
                await asyncio.to_thread(self.scorer.update, text, strong=outcome.score)
            else:
                await asyncio.to_thread(self.scorer.update, text, cheap=outcome.score)
        finally:
            # The update may also bring in other processes' outcomes: every score can change.
            self._clear_scores()
        log.debug("budget_switch_learned", run_id=outcome.run_id, strong=strong)

    def _routed_from(self, outcome: Outcome) -> tuple[str, bool] | None:
        """What a run this instance did not route used: its task, and whether a strong tier ran.

        From the model decisions of its trace (`Outcome.models`); `None` when it has none this
        switch knows (another router's run). Strong means the default strong tiers, as
        `Budget.strong_tiers`.
        """
        known = [self._model_tiers[m] for m in outcome.models if m in self._model_tiers]
        if not known:
            return None
        strong_tiers = Budget().strong_tiers
        return outcome.task, any(t in strong_tiers for t in known)


def _parse_confidence(reply: str) -> float:
    import re

    match = re.search(r"\d+(?:\.\d+)?", reply)
    if match is None:
        lowered = reply.strip().lower()
        return 1.0 if lowered.startswith(("yes", "correct")) else 0.0
    value = float(match.group())
    return max(0.0, min(1.0, value / 100 if value > 1 else value))


def _estimate(spec: ModelSpec, ctx: RoutingContext) -> float:
    chars = len(ctx.task) + len(ctx.previous or "")
    tokens = math.ceil(chars / _CHARS_PER_TOKEN) + 16
    return spec.cost_usd(tokens, spec.max_output_tokens)


def _after(snap: BudgetSnapshot, estimate: float, *, strong: bool) -> BudgetSnapshot:
    return BudgetSnapshot(
        limit_usd=snap.limit_usd,
        spent_usd=snap.spent_usd + estimate,
        reserved_usd=snap.reserved_usd,
        strong_limit=snap.strong_limit,
        strong_used=snap.strong_used + int(strong),
        strong_reserved=snap.strong_reserved,
        key=snap.key,
    )


_Policy = Callable[[BudgetSwitch, RoutingContext, tuple[str, ...]], Awaitable[_Choice]]

_POLICIES: dict[str, _Policy] = {
    "always": BudgetSwitch._always,
    "first_strong": BudgetSwitch._first_strong,
    "threshold": BudgetSwitch._threshold,
    "cascade": BudgetSwitch._cascade,
}


def _default_memory_key(registry: Registry, tiers: Sequence[str], scorer: DifficultyScorer) -> str:
    """`budget-switch/memory/<cheapest model>..<strongest model>/<embedder>`.

    The embedder is part of the key: switches with different embedders sharing one memory
    would re-embed all of it at every update, back and forth.
    """
    low, high = (registry.models_in_tier(t)[0].model for t in (tiers[0], tiers[-1]))
    params = scorer.params()
    embedder = params.get("embedder") or dict(params.get("knn") or {}).get("embedder")
    suffix = f"/{embedder}" if embedder else ""
    return f"budget-switch/memory/{low}..{high}{suffix}"
