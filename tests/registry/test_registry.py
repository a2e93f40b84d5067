"""`Registry`: decorators, names, lookups, cross-reference validation, content hash."""

from __future__ import annotations

import traceback
from typing import Any

import pytest

import agentroute as ar
from agentroute.registry import RetryPolicy

PRICES = {"input_price_per_mtok": 0.15, "output_price_per_mtok": 0.60}
FAKE_SECRET = "sk-test-SECRET1234567890"


def _registry_with_billing() -> ar.Registry:
    reg = ar.Registry()

    @reg.agent
    async def billing(ctx: Any, task: str) -> str:
        """Invoices, charges and refunds."""
        return task

    return reg


# -- decorators ----------------------------------------------------------------------------------


def test_bare_decorator_returns_the_function_unchanged() -> None:
    """`@registry.agent` (bare) returns the very same function object and registers it."""
    reg = ar.Registry()

    async def billing(ctx: Any, task: str) -> str:
        """Invoices, charges and refunds."""
        return task

    assert reg.agent(billing) is billing
    assert reg.agent_function("billing") is billing
    assert list(reg.agents) == ["billing"]


def test_called_decorator_returns_the_function_unchanged() -> None:
    """`@registry.agent(...)` (called) returns the same function and records the options."""
    reg = ar.Registry()
    reg.skill("refunds", description="Refund rules.")

    def shipping(ctx: Any, task: str) -> str:
        """Tracks parcels."""
        return task

    decorator = reg.agent(name="ship", skills=["refunds"], tags=["logistics"], stage=1)
    assert decorator(shipping) is shipping
    spec = reg.get_agent("ship")
    assert spec.skills == ("refunds",)
    assert spec.tags == ("logistics",)
    assert spec.stage == 1
    assert spec.function.endswith("shipping")
    assert reg.agent_function("ship") is shipping


def test_description_comes_from_the_docstring() -> None:
    """Without `description=`, the agent's description is its (cleaned) docstring."""
    reg = ar.Registry()

    @reg.agent
    def billing(ctx: Any, task: str) -> str:
        """Invoices, charges and refunds.

        Also payment methods.
        """
        return task

    assert reg.get_agent("billing").description == (
        "Invoices, charges and refunds.\n\nAlso payment methods."
    )


def test_explicit_description_wins_over_the_docstring() -> None:
    """`description=` replaces the docstring."""
    reg = ar.Registry()

    @reg.agent(description="Explicit.")
    def billing(ctx: Any, task: str) -> str:
        """Docstring."""
        return task

    assert reg.get_agent("billing").description == "Explicit."


@pytest.mark.parametrize("docstring", [None, "   "])
def test_missing_description_names_the_agent(docstring: str | None) -> None:
    """No docstring and no description → ConfigurationError naming the agent; nothing registered."""
    reg = ar.Registry()

    def refunds_bot(ctx: Any, task: str) -> str:
        return task

    refunds_bot.__doc__ = docstring
    with pytest.raises(ar.ConfigurationError, match=r"agent 'refunds_bot' has no description"):
        reg.agent(refunds_bot)
    assert dict(reg.agents) == {}


@pytest.mark.parametrize(
    "fn",
    [
        lambda: "x",
        lambda ctx: "x",
        lambda *, ctx, task: "x",
    ],
    ids=["no-args", "one-arg", "keyword-only"],
)
def test_wrong_signature_is_refused(fn: Any) -> None:
    """An agent that cannot take `(ctx, task)` positionally → ConfigurationError with the fix."""
    reg = ar.Registry()
    with pytest.raises(ar.ConfigurationError, match=r"must accept \(ctx, task\)"):
        reg.agent(name="bad", description="Bad agent.")(fn)
    assert "bad" not in reg.agents


def test_varargs_signature_is_accepted() -> None:
    """`def f(*args)` can take `(ctx, task)` and is accepted."""
    reg = ar.Registry()
    reg.agent(name="any", description="Anything.")(lambda *args: "x")
    assert "any" in reg.agents


def test_non_callable_is_refused() -> None:
    """Registering something that is not a function → ConfigurationError."""
    reg = ar.Registry()
    with pytest.raises(ar.ConfigurationError, match="needs a function"):
        reg.agent(name="x", description="X.")(42)  # type: ignore[type-var]


def test_invalid_agent_name_names_the_field() -> None:
    """A name outside NAME_PATTERN → ConfigurationError naming the `name` field."""
    reg = ar.Registry()
    with pytest.raises(ar.ConfigurationError, match=r"agent 'bad name!': field 'name'"):
        reg.agent(name="bad name!", description="X.")(lambda ctx, task: task)


def test_agent_options_are_recorded() -> None:
    """tier, model, timeout, retry and examples land on the AgentSpec."""
    reg = ar.Registry()
    policy = RetryPolicy(max_attempts=2, initial_backoff_s=0)
    reg.agent(
        name="a",
        description="A.",
        tier="cheap",
        model="m",
        timeout_s=1.5,
        retry=policy,
        examples=["hello"],
    )(lambda ctx, task: task)
    spec = reg.get_agent("a")
    assert (spec.tier, spec.model, spec.timeout_s, spec.retry, spec.examples) == (
        "cheap",
        "m",
        1.5,
        policy,
        ("hello",),
    )


def test_default_agent_retry_is_a_single_attempt() -> None:
    """Without `retry=`, an agent function is not retried."""
    reg = _registry_with_billing()
    assert reg.get_agent("billing").retry.max_attempts == 1


def test_add_agent_from_a_spec() -> None:
    """`add_agent` registers a ready-made spec with its function, and refuses duplicates."""
    reg = ar.Registry()

    def fn(ctx: Any, task: str) -> str:
        return task

    spec = ar.AgentSpec(name="loaded", description="Loaded from config.")
    assert reg.add_agent(spec, fn) is spec
    assert reg.agent_function("loaded") is fn
    with pytest.raises(ar.ConfigurationError, match="already registered"):
        reg.add_agent(spec, fn)
    with pytest.raises(ar.ConfigurationError, match=r"must accept \(ctx, task\)"):
        reg.add_agent(ar.AgentSpec(name="other", description="x"), lambda: "x")


# -- duplicates ----------------------------------------------------------------------------------


def test_duplicate_agent_is_refused_and_keeps_the_first() -> None:
    """Registering a second agent under a taken name fails and names where the first came from."""
    reg = _registry_with_billing()
    first = reg.agent_function("billing")

    def billing(ctx: Any, task: str) -> str:
        """Another billing."""
        return task

    with pytest.raises(ar.ConfigurationError, match=r"agent 'billing' is already registered"):
        reg.agent(billing)
    assert reg.agent_function("billing") is first
    # the hint: register under another name
    reg.agent(name="billing-2")(billing)
    assert set(reg.agents) == {"billing", "billing-2"}


def test_duplicate_model_is_refused() -> None:
    """A second model under a taken name → ConfigurationError naming the first model id."""
    reg = ar.Registry()
    reg.model("cheap", "openai/gpt-4o-mini", **PRICES)
    with pytest.raises(
        ar.ConfigurationError, match=r"model 'cheap' is already registered.*gpt-4o-mini"
    ):
        reg.model("cheap", "openai/gpt-4o", **PRICES)
    assert reg.get_model("cheap").model == "openai/gpt-4o-mini"


def test_duplicate_skill_is_refused() -> None:
    """A second skill with a taken id → ConfigurationError; the first stays."""
    reg = ar.Registry()
    reg.skill("refunds", description="Refund rules.", body="v1")
    with pytest.raises(ar.ConfigurationError, match=r"skill 'refunds' is already registered"):
        reg.skill("refunds", description="Other.", body="v2")
    assert reg.get_skill("refunds").body == "v1"


def test_duplicate_task_is_refused() -> None:
    """A second task type with a taken name → ConfigurationError."""
    reg = ar.Registry()
    reg.task("billing", description="Money questions.", examples=["refund?"])
    with pytest.raises(ar.ConfigurationError, match=r"task 'billing' is already registered"):
        reg.task("billing")
    assert reg.tasks["billing"].examples == ("refund?",)


def test_skill_in_code_and_loaded_skill_collide(tmp_path: Any) -> None:
    """A code skill and a SKILL.md with the same id collide; the message says where it came from."""
    (tmp_path / "refunds").mkdir()
    (tmp_path / "refunds" / "SKILL.md").write_text(
        "---\nname: refunds\ndescription: From a file.\n---\nBody\n", encoding="utf-8"
    )
    reg = ar.Registry()
    reg.skill("refunds", description="From code.")
    with pytest.raises(
        ar.ConfigurationError, match=r"'refunds' is already registered \(from code\)"
    ):
        reg.load_skills(tmp_path)
    assert reg.get_skill("refunds").description == "From code."


# -- lookups -------------------------------------------------------------------------------------


def test_unknown_agent_suggests_the_close_name() -> None:
    """A misspelt agent name gets the exact did-you-mean message."""
    reg = _registry_with_billing()
    with pytest.raises(ar.ConfigurationError) as info:
        reg.get_agent("biling")
    assert str(info.value) == "unknown agent 'biling' — did you mean 'billing'?"
    with pytest.raises(ar.ConfigurationError, match="did you mean 'billing'"):
        reg.agent_function("biling")


def test_unknown_skill_and_model_suggest_close_names() -> None:
    """Misspelt skill ids and model names get did-you-mean hints too."""
    reg = ar.Registry()
    reg.skill("refund-policy", description="Refunds.")
    reg.model("cheap", "openai/gpt-4o-mini", **PRICES)
    with pytest.raises(
        ar.ConfigurationError,
        match=r"unknown skill 'refund-polcy' — did you mean 'refund-policy'\?",
    ):
        reg.get_skill("refund-polcy")
    with pytest.raises(
        ar.ConfigurationError, match=r"unknown model 'chep' — did you mean 'cheap'\?"
    ):
        reg.get_model("chep")


def test_unknown_name_without_close_match_lists_the_known_ones() -> None:
    """With nothing close, the message lists the registered names (or says none exist)."""
    reg = _registry_with_billing()
    with pytest.raises(ar.ConfigurationError, match=r"known: 'billing'\."):
        reg.get_agent("zzzzzz")
    with pytest.raises(ar.ConfigurationError, match="none are registered yet"):
        ar.Registry().get_model("cheap")


def test_lookups_are_read_only_snapshots() -> None:
    """`registry.agents` cannot be mutated, and a snapshot does not change after registration."""
    reg = _registry_with_billing()
    snapshot = reg.agents
    with pytest.raises(TypeError):
        snapshot["x"] = snapshot["billing"]  # type: ignore[index]
    reg.agent(name="late", description="Late.")(lambda ctx, task: task)
    assert "late" not in snapshot
    assert "late" in reg.agents


def test_skills_for_gives_declared_skills_or_all() -> None:
    """`skills_for` returns an agent's declared skills in order, or every skill when undeclared."""
    reg = ar.Registry()
    for sid in ("a", "b", "c"):
        reg.skill(sid, description=f"Skill {sid}.")
    reg.agent(name="picky", description="P.", skills=["c", "a"])(lambda ctx, task: task)
    reg.agent(name="open", description="O.")(lambda ctx, task: task)
    reg.agent(name="none", description="N.", skills=[])(lambda ctx, task: task)
    assert [s.id for s in reg.skills_for("picky")] == ["c", "a"]
    assert [s.id for s in reg.skills_for("open")] == ["a", "b", "c"]
    assert reg.skills_for("none") == []


def test_models_in_tier_keeps_registration_order() -> None:
    """`models_in_tier` lists a tier's models in registration order, empty for unknown tiers."""
    reg = ar.Registry()
    reg.model("m1", "openai/gpt-4o-mini", tier="cheap", **PRICES)
    reg.model("m2", "openai/gpt-4o", tier="strong", **PRICES)
    reg.model("m3", "openai/gpt-4.1-mini", tier="cheap", **PRICES)
    assert [m.name for m in reg.models_in_tier("cheap")] == ["m1", "m3"]
    assert reg.models_in_tier("nope") == []


def test_version_grows_with_each_registration() -> None:
    """`version` increases on every registration and not on a failed one."""
    reg = ar.Registry()
    v0 = reg.version
    reg.model("cheap", "openai/gpt-4o-mini", **PRICES)
    v1 = reg.version
    with pytest.raises(ar.ConfigurationError):
        reg.model("cheap", "openai/gpt-4o-mini", **PRICES)
    assert v0 < v1 == reg.version


# -- validate ------------------------------------------------------------------------------------


def test_validate_passes_a_consistent_registry(registry: ar.Registry) -> None:
    """The support-desk fixture registry validates."""
    registry.validate()


def test_validate_catches_an_unknown_skill() -> None:
    """An agent naming a skill that is not registered fails validation with did-you-mean."""
    reg = ar.Registry()
    reg.skill("refund-policy", description="Refunds.")
    reg.agent(name="billing", description="B.", skills=["refund-polcy"])(lambda c, t: t)
    with pytest.raises(
        ar.ConfigurationError,
        match=r"agent 'billing' lists unknown skill 'refund-polcy' — did you mean 'refund-policy'",
    ):
        reg.validate()


def test_validate_catches_an_unknown_model() -> None:
    """An agent naming a model that is not registered fails validation with did-you-mean."""
    reg = ar.Registry()
    reg.model("strong", "openai/gpt-4o", **PRICES)
    reg.agent(name="billing", description="B.", model="strnog")(lambda c, t: t)
    with pytest.raises(
        ar.ConfigurationError,
        match=r"agent 'billing' names unknown model 'strnog' — did you mean 'strong'",
    ):
        reg.validate()


def test_validate_catches_an_unknown_tier() -> None:
    """An agent naming a tier no model has fails validation."""
    reg = ar.Registry()
    reg.model("m", "openai/gpt-4o-mini", tier="cheap", **PRICES)
    reg.agent(name="billing", description="B.", tier="chep")(lambda c, t: t)
    with pytest.raises(
        ar.ConfigurationError, match=r"tier 'chep' but no model has it — did you mean 'cheap'"
    ):
        reg.validate()


def test_validate_catches_an_unknown_fallback() -> None:
    """A model whose fallback is not registered fails validation with did-you-mean."""
    reg = ar.Registry()
    reg.model("strong", "openai/gpt-4o", fallbacks=["chaep"], **PRICES)
    reg.model("cheap", "openai/gpt-4o-mini", **PRICES)
    with pytest.raises(
        ar.ConfigurationError,
        match=r"model 'strong' lists unknown fallback 'chaep' — did you mean 'cheap'",
    ):
        reg.validate()


def test_model_may_not_fall_back_to_itself() -> None:
    """A model listing itself as a fallback is refused at registration."""
    reg = ar.Registry()
    with pytest.raises(ar.ConfigurationError, match="lists itself in fallbacks"):
        reg.model("cheap", "openai/gpt-4o-mini", fallbacks=["cheap"], **PRICES)


# -- model specs and secrets ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    ["api_key", "apikey", "OPENAI_API_KEY", "client_secret", "password", "token", "Authorization"],
)
def test_secrets_in_params_are_refused(key: str) -> None:
    """A params key that looks like a credential is refused, pointing at `api_key_env`."""
    reg = ar.Registry()
    with pytest.raises(ar.ConfigurationError, match="api_key_env") as info:
        reg.model("m", "openai/gpt-4o-mini", params={key: FAKE_SECRET}, **PRICES)
    assert "m" not in reg.models
    rendered = "".join(traceback.format_exception(info.value))
    assert FAKE_SECRET not in rendered, "the secret leaks through the traceback"


def test_secret_is_not_echoed_by_direct_spec_construction() -> None:
    """Building a ModelSpec with a secret in params fails without echoing the secret."""
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as info:
        ar.ModelSpec(name="m", model="x/y", params={"api_key": FAKE_SECRET})
    assert FAKE_SECRET not in str(info.value)


def test_harmless_params_and_key_env_are_kept() -> None:
    """Ordinary params and `api_key_env` (a variable name, not a key) are accepted."""
    reg = ar.Registry()
    spec = reg.model(
        "local",
        "ollama/llama3.1",
        params={"api_base": "http://localhost:11434", "temperature": 0},
        api_key_env="MY_KEY_VAR",
        **PRICES,
    )
    assert spec.params == {"api_base": "http://localhost:11434", "temperature": 0}
    assert spec.api_key_env == "MY_KEY_VAR"


def test_invalid_model_field_names_the_field() -> None:
    """A negative price → ConfigurationError naming the model and the field."""
    reg = ar.Registry()
    with pytest.raises(ar.ConfigurationError, match=r"model 'm': field 'input_price_per_mtok'"):
        reg.model("m", "openai/gpt-4o-mini", input_price_per_mtok=-1)
    with pytest.raises(ar.ConfigurationError, match=r"model 'm': field 'colour'"):
        reg.model("m", "openai/gpt-4o-mini", colour="red")


# -- content hash --------------------------------------------------------------------------------


def _build(body: str = "Refunds take 5 days.") -> ar.Registry:
    reg = ar.Registry()
    reg.model("cheap", "openai/gpt-4o-mini", tier="cheap", **PRICES)
    reg.skill("refunds", description="Refund rules.", body=body)
    reg.task("billing", description="Money.", examples=["refund?"])

    @reg.agent(skills=["refunds"], tier="cheap")
    async def billing(ctx: Any, task: str) -> str:
        """Invoices, charges and refunds."""
        return task

    return reg


def test_content_hash_is_stable_across_identical_registries() -> None:
    """Two registries built the same way have the same 64-hex content hash."""
    a, b = _build(), _build()
    assert a.content_hash() == b.content_hash()
    assert len(a.content_hash()) == 64
    int(a.content_hash(), 16)


def test_content_hash_changes_with_a_skill_body() -> None:
    """Changing one character of a skill body changes the registry's hash."""
    assert (
        _build("Refunds take 5 days.").content_hash()
        != _build("Refunds take 6 days.").content_hash()
    )


def test_content_hash_follows_registrations() -> None:
    """Registering something new changes the hash (the cache is invalidated)."""
    reg = _build()
    before = reg.content_hash()
    assert reg.content_hash() == before
    reg.model("strong", "openai/gpt-4o", tier="strong", **PRICES)
    assert reg.content_hash() != before


def test_content_hash_ignores_where_a_skill_was_loaded_from(tmp_path: Any) -> None:
    """The same SKILL.md loaded from two directories hashes the same (source is not content)."""
    hashes = []
    for where in ("one", "two"):
        root = tmp_path / where / "refunds"
        root.mkdir(parents=True)
        (root / "SKILL.md").write_text(
            "---\nname: refunds\ndescription: Refund rules.\n---\nBody\n", encoding="utf-8"
        )
        reg = ar.Registry()
        reg.load_skills(tmp_path / where)
        hashes.append(reg.content_hash())
    assert hashes[0] == hashes[1]


def test_repr_counts_what_is_registered(registry: ar.Registry) -> None:
    """The repr shows counts, not contents."""
    assert repr(registry) == "Registry(agents=4, skills=16, models=2, tasks=0)"


def test_a_bare_string_is_one_name_not_characters() -> None:
    """`skills="refund-policy"` (a str, not a list) means that one skill; likewise tags/examples."""
    reg = ar.Registry()
    reg.skill("refunds", description="R.", tags="billing")
    reg.task("billing", examples="where is my refund?")
    reg.agent(name="a", description="A.", skills="refunds", tags="money", examples="refund?")(
        lambda ctx, task: task
    )
    spec = reg.get_agent("a")
    assert (spec.skills, spec.tags, spec.examples) == (("refunds",), ("money",), ("refund?",))
    assert reg.get_skill("refunds").tags == ("billing",)
    assert reg.tasks["billing"].examples == ("where is my refund?",)
    reg.validate()


def test_duplicate_model_with_padded_name_is_a_configuration_error() -> None:
    """A duplicate name differing only by surrounding spaces is refused cleanly (no KeyError)."""
    reg = ar.Registry()
    reg.model("cheap", "openai/gpt-4o-mini", **PRICES)
    with pytest.raises(ar.ConfigurationError, match="'cheap' is already registered"):
        reg.model(" cheap ", "openai/gpt-4o", **PRICES)
