"""`Rules`: signal-driven routing. The first rule whose signal fires wins; else the default."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from agentroute.errors import ConfigurationError
from agentroute.routing._protocol import Candidate, RouteDecision, RoutingContext
from agentroute.routing._signals import Signal, signal_from_config

__all__ = ["Rule", "Rules"]


@dataclass(frozen=True, slots=True)
class Rule:
    """When `when` fires, choose `choose`.

    Attributes:
        name: Label recorded in the trace.
        when: The signal.
        choose: Agents (agent slot), skill ids (skills slot) or one model (model slot).
        then: Agent slot: end the run after the agents answer, or route again.
        out_of_scope: Agent slot: the request is out of scope (`choose` must be empty).
    """

    name: str
    when: Signal
    choose: tuple[str, ...] = ()
    then: Literal["finish", "route"] = "finish"
    out_of_scope: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "choose", _names(self.choose, f"rule {self.name!r}: choose"))
        if self.out_of_scope == bool(self.choose):
            msg = (
                f"rule {self.name!r}: give either `choose` (names) or `out_of_scope: true`, "
                "not both and not neither"
            )
            raise ConfigurationError(msg)


class Rules:
    """Route by rules over signals (keywords, regex, length, metadata, predicates).

    Rules are tried in order; the first whose signal fires wins. Every rule is evaluated anyway,
    so the trace shows which others would have fired. With no match the `default` applies; with
    no default the strategy abstains (so a `Fallback` can try the next one).

    Example:
        ```python
        Rules(
            [Rule("refunds", Keywords("refund", "charged twice"), ("billing",))],
            default=("general",),
        )
        ```

    Args:
        rules: `Rule`s, or mappings `{name, when, choose, then?}` in the YAML form.
        default: Choice when no rule fires; `None` = abstain.
    """

    name: ClassVar[str] = "rules"

    def __init__(
        self,
        rules: Iterable[Rule | Mapping[str, Any]],
        default: Sequence[str] | None = None,
    ) -> None:
        self.rules = tuple(_rule(r, i) for i, r in enumerate(rules))
        if not self.rules and default is None:
            msg = "Rules needs at least one rule or a default"
            raise ConfigurationError(msg)
        self.default = _names(default, "Rules(default=...)") if default is not None else None

    def fixed_choices(self) -> tuple[str, ...]:
        """Every name a rule or the default may choose.

        `Router.compile()` checks them against the registry, so a misspelt name fails there,
        not when its rule first fires in a live run.
        """
        names = [n for r in self.rules for n in r.choose] + list(self.default or ())
        return tuple(dict.fromkeys(names))

    def params(self) -> dict[str, Any]:
        """Parameters for the trace."""
        return {
            "rules": [
                {
                    "name": r.name,
                    "when": r.when.describe(),
                    **({"out_of_scope": True} if r.out_of_scope else {"choose": list(r.choose)}),
                    "then": r.then,
                }
                for r in self.rules
            ],
            "default": list(self.default) if self.default is not None else None,
        }

    async def route(self, ctx: RoutingContext) -> RouteDecision:
        """Evaluate every rule; the first that fires decides."""
        winner: Rule | None = None
        fired: list[str] = []
        candidates: list[Candidate] = []
        for rule in self.rules:
            res = rule.when.evaluate(ctx)
            if res.matched:
                fired.append(rule.name)
                winner = winner or rule
            for choice in rule.choose or ("<out_of_scope>",):
                candidates.append(
                    Candidate(
                        name=choice,
                        score=1.0 if res.matched else 0.0,
                        detail={"rule": rule.name, **res.detail},
                    )
                )
        evidence = {"fired": fired}
        if winner is not None and winner.out_of_scope:
            return RouteDecision.out_of_scope(
                f"rule {winner.name!r} fired: out of scope", candidates, **evidence
            )
        if winner is not None:
            reason = f"rule {winner.name!r} fired"
            return _decide(
                ctx,
                winner.choose,
                then=winner.then,
                reason=reason,
                candidates=candidates,
                evidence=evidence,
            )
        if self.default is not None:
            return _decide(
                ctx,
                self.default,
                then="finish",
                reason="no rule fired; default",
                candidates=candidates,
                evidence=evidence,
            )
        return RouteDecision.abstain("no rule fired and no default", fired=fired)


def _decide(
    ctx: RoutingContext,
    choice: tuple[str, ...],
    *,
    then: Literal["finish", "route"],
    reason: str,
    candidates: list[Candidate],
    evidence: dict[str, Any],
) -> RouteDecision:
    if ctx.slot == "skills":
        return RouteDecision.with_skills(
            *choice, reason=reason, candidates=candidates, evidence=evidence
        )
    if ctx.slot == "model":
        if len(choice) != 1:
            msg = f"Rules in the model slot must choose exactly one model, got {list(choice)}"
            raise ConfigurationError(msg)
        return RouteDecision.with_model(
            choice[0], reason=reason, candidates=candidates, evidence=evidence
        )
    return RouteDecision.to(
        *choice, then=then, reason=reason, candidates=candidates, evidence=evidence
    )


def _names(value: object, where: str) -> tuple[str, ...]:
    """Names as a tuple: one string is one name (not its characters); `None` is none."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, Iterable):
        msg = f"{where} takes a name or a list of names, got {value!r}"
        raise ConfigurationError(msg)
    names = tuple(value)
    for name in names:
        if not isinstance(name, str):
            msg = f"{where} takes names (strings), got {name!r} in {value!r}"
            raise ConfigurationError(msg)
        if not name.strip():
            msg = f"{where} has an empty name in {list(names)!r}"
            raise ConfigurationError(msg)
    return names


def _rule(obj: Rule | Mapping[str, Any], index: int) -> Rule:
    if isinstance(obj, Rule):
        return obj
    where = f"rules[{index}]"
    if not isinstance(obj, Mapping):
        msg = f"{where}: expected a Rule or a mapping {{name, when, choose}}"
        raise ConfigurationError(msg)
    unknown = set(obj) - {"name", "when", "choose", "then", "out_of_scope"}
    if unknown:
        msg = (
            f"{where}: unknown field(s) {sorted(unknown)}; allowed: name, when, choose, then, "
            "out_of_scope"
        )
        raise ConfigurationError(msg)
    if "when" not in obj or ("choose" not in obj and not obj.get("out_of_scope")):
        msg = f"{where}: needs 'when' (a signal) and 'choose' (names) or 'out_of_scope: true'"
        raise ConfigurationError(msg)
    choose = obj.get("choose", [])
    if isinstance(choose, str):
        choose = [choose]
    if not isinstance(choose, list | tuple) or not all(isinstance(c, str) for c in choose):
        msg = f"{where}.choose: expected a name or a list of names, got {choose!r}"
        raise ConfigurationError(msg)
    then = obj.get("then", "finish")
    if then not in ("finish", "route"):
        msg = f"{where}.then: use 'finish' or 'route', got {then!r}"
        raise ConfigurationError(msg)
    return Rule(
        name=str(obj.get("name", f"rule-{index}")),
        when=signal_from_config(obj["when"], f"{where}.when"),
        choose=tuple(choose),
        then=then,
        out_of_scope=bool(obj.get("out_of_scope", False)),
    )
