"""ReasoningRouter: strict output, one repair, fallback, shortlist, fan-out and out-of-scope."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from typing import Any

import pytest

import agentroute as ar
from agentroute.errors import ModelUnavailable
from agentroute.models import ModelRequest
from agentroute.routing import RoutingContext
from agentroute.routing._description import DescriptionRouter
from agentroute.routing._reasoning import ReasoningRouter, parse_router_output
from agentroute.routing._refiner import Refiner
from agentroute.testing import ScriptedModelClient

from ._words import WordsEmbedder, agent_ctx

AGENT_ANSWERS = [
    (r"billing:", "Your refund has been issued."),
    (r"shipping:", "Your package is on its way."),
    (r"security:", "Your account is locked for safety."),
    (r"general:", "Happy to help."),
]


def scripted(first: str, repair: str | None = None, **extra: Any) -> ScriptedModelClient:
    """A client answering the routing prompt with `first` and the repair prompt with `repair`."""
    rules: list[Any] = []
    if repair is not None:
        rules.append((r"Your answer was invalid", repair))
    rules.append((r"You are a Router Agent", first))
    rules += extra.get("more", [])
    rules += AGENT_ANSWERS
    return ScriptedModelClient(rules, default="OK")


def make_router(registry: ar.Registry, client: ScriptedModelClient, **kw: Any) -> ar.Router:
    """A router whose agent slot is a ReasoningRouter on the `strong` model."""
    strategy_kw = {k: kw.pop(k) for k in ("fallback", "max_agents", "shortlist") if k in kw}
    strategy_kw.setdefault("fallback", ar.Static("general"))
    return ar.Router(
        registry,
        agent=ReasoningRouter(
            model="strong", shortlister=DescriptionRouter(embedder=WordsEmbedder()), **strategy_kw
        ),
        client=client,
        store="memory://",
        **kw,
    )


def agent_decision(router: ar.Router, run_id: str) -> Any:
    """The first agent-slot decision of a run."""
    return next(d for d in router.trace(run_id).decisions if d.slot == "agent")


async def test_well_formed_output_routes_to_the_named_agents(registry: ar.Registry) -> None:
    """A valid `<Reason>`/`<ID>` answer routes to exactly those agents, reasoning recorded."""
    client = scripted("<Reason>It is about a charge.</Reason>\n<ID>billing</ID>")
    router = make_router(registry, client)
    result = await router.run("I was charged twice")
    assert result.answer == "Your refund has been issued."
    decision = agent_decision(router, result.run_id)
    assert decision.chosen == ["billing"]
    assert decision.reason == "It is about a charge."
    assert decision.evidence["repair"] is False
    assert decision.evidence["fallback"] is None
    assert decision.evidence["raw_output"].startswith("<Reason>")
    prompt = client.requests[0].messages[-1].content
    assert "<Agent><ID>billing</ID>" in prompt
    assert "user: I was charged twice" in prompt


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        ("<Reason>x</Reason><ID>biling</ID>", "unknown agent id 'biling'"),
        ("<Reason>x</Reason><ID>billing</ID><ID>billing</ID>", "duplicate ids"),
        (
            "<Reason>x</Reason><ID>billing</ID><ID>shipping</ID><ID>security</ID><ID>general</ID>",
            "choose at most 3",
        ),
        ("Sure! I can help you with your refund right away.", "no <ID>"),
        ("", "the model returned nothing"),
        ("<Reason>x</Reason><ID>oos</ID><ID>billing</ID>", "must be the only id"),
    ],
)
async def test_invalid_output_is_repaired_once(registry: ar.Registry, bad: str, error: str) -> None:
    """Each kind of invalid output gets one repair call; a valid repair decides, all recorded."""
    client = scripted(bad, repair="<Reason>Shipping issue.</Reason><ID>shipping</ID>")
    router = make_router(registry, client)
    result = await router.run("where is my parcel")
    assert result.answer == "Your package is on its way."
    decision = agent_decision(router, result.run_id)
    assert decision.chosen == ["shipping"]
    attempts = decision.evidence["attempts"]
    assert len(attempts) == 2
    assert attempts[0]["raw_output"] == bad
    assert error in attempts[0]["error"]
    assert attempts[1]["error"] is None
    assert decision.evidence["repair"] is True
    repair_request = next(
        r for r in client.requests if "Your answer was invalid" in r.messages[-1].content
    )
    assert [m.role for m in repair_request.messages] == ["user", "assistant", "user"]


async def test_invalid_after_repair_uses_the_fallback_and_records_everything(
    registry: ar.Registry,
) -> None:
    """Free text twice: the fallback decides; evidence keeps both raw outputs and the fallback."""
    client = scripted("I will answer myself: refunds take 5 days.", repair="Still no tags.")
    router = make_router(registry, client, fallback=ar.Static("security"))
    result = await router.run("refund please")
    assert result.answer == "Your account is locked for safety."
    decision = agent_decision(router, result.run_id)
    assert decision.chosen == ["security"]
    ev = decision.evidence
    assert [a["raw_output"] for a in ev["attempts"]] == [
        "I will answer myself: refunds take 5 days.",
        "Still no tags.",
    ]
    assert ev["repair"] is True
    assert ev["fallback"]["strategy"] == "static"
    assert ev["raw_output"] == "Still no tags."
    assert "fallback 'static'" in decision.reason
    # The router never answered the user with the model's free text.
    assert "refunds take 5 days" not in (result.answer or "")


async def test_model_that_fails_goes_straight_to_the_fallback(registry: ar.Registry) -> None:
    """A routing call that raises is not repaired: the fallback decides, the error is kept."""
    client = scripted("unused")
    client.rules.insert(
        0, (client._matcher(r"Router Agent"), ModelUnavailable("down", model="strong"))
    )
    router = make_router(registry, client)
    result = await router.run("hello")
    decision = agent_decision(router, result.run_id)
    assert decision.chosen == ["general"]
    assert decision.evidence["attempts"][0]["raw_output"] is None
    assert "down" in decision.evidence["attempts"][0]["error"]


async def test_no_fallback_abstains_and_the_request_is_out_of_scope(
    registry: ar.Registry,
) -> None:
    """Without a fallback, an output that stays invalid ends the run as out of scope."""
    client = scripted("", repair="")
    router = make_router(registry, client, fallback=None)
    router.agent_strategy.fallback = None  # type: ignore[attr-defined]
    result = await router.run("hello")
    assert result.status == "out_of_scope"
    decision = agent_decision(router, result.run_id)
    assert decision.outcome == "abstain"
    assert decision.evidence["fallback"] == {"strategy": None}


async def test_oos_goes_to_the_out_of_scope_handler(registry: ar.Registry) -> None:
    """`<ID>oos</ID>` is an out-of-scope decision, recorded, answered by the handler agent."""
    client = scripted("<Reason>Nobody sells pizza.</Reason><ID>oos</ID>")
    router = make_router(registry, client, out_of_scope="general")
    result = await router.run("order me a pizza")
    assert result.status == "out_of_scope"
    assert result.answer == "Happy to help."
    decision = agent_decision(router, result.run_id)
    assert decision.outcome == "out_of_scope"
    assert decision.evidence["ids"] == ["oos"]
    prompt = client.requests[0].messages[-1].content
    assert "<ID>general</ID>" not in prompt  # the handler is not a candidate


async def test_agent_registered_after_the_router_is_in_the_prompt(registry: ar.Registry) -> None:
    """Dynamic onboarding: the prompt is built from the registry at routing time."""
    client = scripted("<Reason>Tax question.</Reason><ID>tax</ID>", more=[(r"tax:", "Taxes!")])
    router = make_router(registry, client)
    await router.run("hello")

    @registry.agent
    async def tax(ctx: ar.AgentContext, task: str) -> str:
        """VAT, sales tax and tax invoices."""
        return await ctx.complete(f"tax: {task}")

    result = await router.run("how much VAT did I pay")
    assert result.answer == "Taxes!"
    assert "<ID>tax</ID><Description>VAT, sales tax" in client.requests[-2].messages[-1].content


def _five_hundred_agents() -> ar.Registry:
    """500 agents, `agent<i>` handling topic<i> / item<i>, and one model."""
    reg = ar.Registry()
    reg.model("strong", "openai/gpt-4o", input_price_per_mtok=1, output_price_per_mtok=1)
    for i in range(500):
        reg.agent(name=f"agent{i}", description=f"handles topic{i} questions about item{i}")(
            lambda ctx, task: "ok"
        )
    return reg


def _context(reg: ar.Registry, client: ScriptedModelClient, task: str) -> RoutingContext:
    """An agent-slot context over every agent, answering through `client`."""
    return dataclasses.replace(agent_ctx(reg, task), complete=_complete_via(client, reg))


async def test_five_hundred_agents_are_shortlisted_to_fit_the_window() -> None:
    """With 500 agents the description router shortlists; the prompt fits the context window."""
    reg = _five_hundred_agents()
    captured: list[str] = []

    def reply(request: ModelRequest) -> str:
        captured.append(request.messages[-1].content)
        return "<Reason>topic 7</Reason><ID>agent7</ID>"

    client = ScriptedModelClient([(r"Router Agent", reply)], default="ok")
    strategy = ReasoningRouter(
        model="strong",
        shortlist=20,
        context_tokens=2000,
        max_tokens=200,
        shortlister=DescriptionRouter(embedder=WordsEmbedder()),
    )
    ctx = _context(reg, client, "question about topic7 and item7")
    decision = await strategy.route(ctx)
    assert decision.agents == ("agent7",)
    assert decision.evidence["shortlisted"] is True
    assert decision.evidence["from"] == 500
    assert decision.evidence["prompt_agents"] <= 20
    assert len(captured[0]) // 4 <= 2000 * 0.75


class CountingReasoningRouter(ReasoningRouter):
    """A `ReasoningRouter` that records the agent list of every prompt it builds."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.built: list[tuple[str, ...]] = []

    def build_prompt(self, ctx: RoutingContext, agents: Sequence[str]) -> str:
        """Record `agents`, then build as usual."""
        self.built.append(tuple(agents))
        return super().build_prompt(ctx, agents)


async def test_the_prompt_is_built_once_per_decision(registry: ar.Registry) -> None:
    """Without shortlisting, each decision builds its prompt once: the one measured is sent.

    Building it a second time for the call (as measuring and calling used to) is caught by the
    build count; the prompt sent is exactly what `build_prompt` gives for the candidates.
    """
    client = scripted("<Reason>A charge.</Reason><ID>billing</ID>")
    strategy = CountingReasoningRouter(model="strong")
    ctx = _context(registry, client, "I was charged twice")
    first = await strategy.route(ctx)
    assert first.agents == ("billing",)
    assert first.evidence["shortlisted"] is False
    assert strategy.built == [tuple(registry.agents)]
    await strategy.route(ctx)
    assert len(strategy.built) == 2  # one build per decision, not two
    expected = ReasoningRouter(model="strong").build_prompt(ctx, tuple(registry.agents))
    assert [r.messages[-1].content for r in client.requests] == [expected, expected]


async def test_a_shortlisted_prompt_is_built_once_and_is_the_one_sent() -> None:
    """When shortlisting trims the agents, no agent list is built twice.

    The last prompt measured (the one that fits) is the prompt sent, for exactly the agents the
    evidence counts.
    """
    reg = _five_hundred_agents()
    client = ScriptedModelClient(
        [(r"Router Agent", "<Reason>topic 7</Reason><ID>agent7</ID>")], default="ok"
    )
    strategy = CountingReasoningRouter(
        model="strong",
        shortlist=20,
        context_tokens=1000,
        max_tokens=200,
        shortlister=DescriptionRouter(embedder=WordsEmbedder()),
    )
    ctx = _context(reg, client, "question about topic7 and item7")
    decision = await strategy.route(ctx)
    assert decision.agents == ("agent7",)
    assert decision.evidence["shortlisted"] is True
    assert len(strategy.built) >= 3  # all 500, the first 20, then at least one trim
    assert len(set(strategy.built)) == len(strategy.built)
    sent_agents = strategy.built[-1]
    assert len(sent_agents) == decision.evidence["prompt_agents"] == decision.evidence["kept"]
    sent = client.requests[0].messages[-1].content
    assert sent == ReasoningRouter(model="strong").build_prompt(ctx, sent_agents)
    assert len(sent) // 4 <= 1000 * 0.75 - 200


def _complete_via(client: ScriptedModelClient, reg: ar.Registry) -> Any:
    async def complete(prompt: Any, **kw: Any) -> str:
        from agentroute.models import Message

        msgs = (
            (Message(role="user", content=prompt),)
            if isinstance(prompt, str)
            else tuple(Message.model_validate(dict(m)) for m in prompt)
        )
        response = await client.complete(ModelRequest(model=reg.get_model("strong"), messages=msgs))
        return response.text

    return complete


def test_parser_accepts_case_and_rejects_missing_reason() -> None:
    """Ids match case-insensitively; a missing `<Reason>` is an error (strict format)."""
    out = parse_router_output("<Reason>r</Reason><ID> Billing </ID>", ["billing"], 3)
    assert out.ids == ("billing",)
    with pytest.raises(ValueError, match="Reason"):
        parse_router_output("<ID>billing</ID>", ["billing"], 3)


async def test_fan_out_runs_agents_in_parallel_and_survives_a_failed_branch(
    registry: ar.Registry,
) -> None:
    """Two agents run concurrently; a timed-out branch is recorded and the other survives.

    The LLM refiner's prompt (naming the failed branch) and its output are in the trace.
    """
    started: list[float] = []

    @registry.agent(timeout_s=0.2)
    async def slow(ctx: ar.AgentContext, task: str) -> str:
        """Very slow lookups."""
        started.append(asyncio.get_running_loop().time())
        await asyncio.sleep(5)
        return "never"

    @registry.agent
    async def fast(ctx: ar.AgentContext, task: str) -> str:
        """Quick lookups."""
        started.append(asyncio.get_running_loop().time())
        await asyncio.sleep(0.1)
        return "fast answer"

    client = scripted(
        "<Reason>Both.</Reason><ID>slow</ID><ID>fast</ID>",
        more=[(r"Refining Agent", "merged")],
    )
    router = make_router(
        registry, client, refiner=Refiner(model="strong", skip_single=False), refine_single=True
    )
    result = await router.run("look it up")
    assert result.status == "completed"
    assert abs(started[0] - started[1]) < 0.1  # both branches started together
    trace = router.trace(result.run_id)
    errors = {o.agent: o.error for o in trace.outputs}
    assert errors["fast"] is None
    assert "timeout" in (errors["slow"] or "")
    refine = next(d for d in trace.decisions if d.slot == "refiner")
    # One answer + one failure with refine_single: the refiner merges, prompt in the trace.
    assert result.answer == "merged"
    assert "# The answer of fast" in refine.evidence["prompt"]
    assert "(failed:" in refine.evidence["prompt"]
    assert refine.evidence["raw_output"] == "merged"


async def test_refiner_merges_several_answers_in_the_trace(registry: ar.Registry) -> None:
    """Two answers: the refiner is called once; prompt and output are recorded."""
    client = scripted(
        "<Reason>Both.</Reason><ID>billing</ID><ID>shipping</ID>",
        more=[(r"Refining Agent", "Refund issued and parcel on its way.")],
    )
    router = make_router(registry, client, refiner=Refiner(model="strong"))
    result = await router.run("refund and parcel")
    assert result.answer == "Refund issued and parcel on its way."
    refine = next(d for d in router.trace(result.run_id).decisions if d.slot == "refiner")
    assert refine.evidence["conflict"] is True
    assert "Your refund has been issued." in refine.evidence["prompt"]
    assert "Your package is on its way." in refine.evidence["prompt"]


async def test_refiner_returning_nothing_falls_back_to_the_best_single_answer(
    registry: ar.Registry,
) -> None:
    """An empty refiner output raises; the runtime keeps the first answer and records it."""
    client = scripted(
        "<Reason>Both.</Reason><ID>billing</ID><ID>shipping</ID>",
        more=[(r"Refining Agent", "")],
    )
    router = make_router(registry, client, refiner=Refiner(model="strong"))
    result = await router.run("refund and parcel")
    assert result.answer == "Your refund has been issued."
    refine = next(d for d in router.trace(result.run_id).decisions if d.slot == "refiner")
    assert refine.outcome == "error"
    assert "empty" in (refine.error or "")


def test_yaml_constructible() -> None:
    """The catalog builds the reasoning router with a fallback given as YAML mapping."""
    from agentroute.routing import build_strategy

    strategy = build_strategy(
        {
            "strategy": "reasoning",
            "params": {
                "model": "strong",
                "max_agents": 2,
                "fallback": {"strategy": "static", "params": {"choices": ["general"]}},
            },
        }
    )
    assert isinstance(strategy, ReasoningRouter)
    assert strategy.params()["fallback"]["strategy"] == "static"


def test_ids_inside_the_reason_are_not_choices() -> None:
    """An `<ID>` tag quoted inside `<Reason>` is neither chosen nor counted against max_agents."""
    text = "<Reason>not <ID>shipping</ID> nor <ID>security</ID></Reason><ID>billing</ID>"
    out = parse_router_output(text, ["billing", "shipping", "security"], 1)
    assert out.ids == ("billing",)
    assert "shipping" in out.reason


async def test_a_budget_stop_while_routing_ends_the_run_as_budget_exhausted(
    registry: ar.Registry,
) -> None:
    """A routing call refused by the budget is a budget stop, not out of scope or a fallback."""
    client = scripted("<Reason>r</Reason><ID>billing</ID>")
    router = make_router(registry, client)
    result = await router.run("I was charged twice", budget=ar.Budget(usd=1e-9))
    assert result.status == "budget_exhausted"
    assert client.calls == 0
    assert [d.outcome for d in router.trace(result.run_id).decisions] == ["error"]


class _Abstainer:
    """A shortlister with no opinion (like a DescriptionRouter when no agent is described)."""

    name = "abstainer"
    version = "1"

    async def route(self, ctx: RoutingContext) -> ar.RouteDecision:
        return ar.RouteDecision.abstain("no candidate agent has a description")


async def test_a_shortlister_with_too_few_candidates_is_filled_up_in_order(
    registry: ar.Registry,
) -> None:
    """A shortlister ranking too few agents is filled up from the candidates, in order.

    The prompt then lists `shortlist` agents instead of an empty agent list.
    """
    client = scripted("<Reason>r</Reason><ID>shipping</ID>")
    router = ar.Router(
        registry,
        agent=ReasoningRouter(model="strong", shortlist=2, shortlister=_Abstainer()),
        client=client,
        store="memory://",
    )
    result = await router.run("where is my parcel?")
    assert result.answer == "Your package is on its way."
    prompt = client.requests[0].messages[-1].content
    listed = [line for line in prompt.splitlines() if line.startswith("<Agent>")]
    first_two = list(registry.agents)[:2]
    assert [line.split("</ID>")[0].removeprefix("<Agent><ID>") for line in listed] == first_two
    decision = agent_decision(router, result.run_id)
    assert decision.evidence["kept"] == 2
