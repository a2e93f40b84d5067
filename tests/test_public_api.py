"""The public surface is deliberate: these tests pin it."""

from __future__ import annotations

import subprocess
import sys

import pytest

import agentroute

EXPECTED = {
    "RetrieveRerank",
    "describe_agent",
    "choose_threshold",
    "Refiner",
    "ReasoningRouter",
    "ExampleRouter",
    "DescriptionRouter",
    "BudgetSwitch",
    "replay_sync",
    "UnobservedCall",
    "StepDiff",
    "RecordedModelClient",
    "AgentContext",
    "AgentError",
    "AgentResult",
    "AgentRouteError",
    "AgentSpec",
    "Budget",
    "BudgetExceeded",
    "Candidate",
    "ConfigurationError",
    "ContentError",
    "Fallback",
    "FirstMatch",
    "GraphSpec",
    "InMemoryTraceStore",
    "JoinAnswers",
    "Keywords",
    "LearningStrategy",
    "Length",
    "LiteLLMClient",
    "Message",
    "Metadata",
    "ModelCallError",
    "ModelClient",
    "ModelSpec",
    "Outcome",
    "Predicate",
    "RefineStrategy",
    "Regex",
    "Registry",
    "ReplayReport",
    "RetryPolicy",
    "RouteDecision",
    "Router",
    "RoutingContext",
    "RoutingError",
    "RoutingStrategy",
    "Rule",
    "Rules",
    "RunError",
    "RunResult",
    "SkillSet",
    "SkillSpec",
    "SqlTraceStore",
    "Static",
    "StoreError",
    "TaskSpec",
    "TraceStore",
    "__version__",
    "open_store",
    "replay",
}


def test_exported_names_are_pinned() -> None:
    """`agentroute.__all__` is exactly the agreed public surface (additions are deliberate)."""
    assert set(agentroute.__all__) == EXPECTED


def test_every_exported_name_resolves() -> None:
    """Every name in `__all__` is importable, including the lazily loaded ones."""
    for name in agentroute.__all__:
        assert getattr(agentroute, name) is not None, name


def test_every_public_callable_has_a_docstring() -> None:
    """Each exported class and function documents itself."""
    missing = [
        name
        for name in agentroute.__all__
        if callable(getattr(agentroute, name)) and not getattr(agentroute, name).__doc__
    ]
    assert missing == []


def test_unknown_attribute_raises_attribute_error() -> None:
    """A typo gives a normal AttributeError, not a confusing import failure."""
    with pytest.raises(AttributeError, match="Routr"):
        agentroute.Routr  # type: ignore[attr-defined]  # noqa: B018


def test_import_does_not_load_heavy_engines() -> None:
    """`import agentroute` loads no LangGraph, LiteLLM, SQLAlchemy or torch (fresh process)."""
    code = (
        "import sys, agentroute\n"
        "heavy = [m for m in ('langgraph', 'litellm', 'sqlalchemy', 'sqlmodel', 'torch') "
        "if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == ""


def test_each_subpackage_declares_all() -> None:
    """Every public subpackage re-exports its names with `__all__`, and they all resolve."""
    import importlib

    for mod in (
        "registry",
        "routing",
        "runtime",
        "models",
        "stores",
        "errors",
        "testing",
        "routing.embeddings",
    ):
        module = importlib.import_module(f"agentroute.{mod}")
        assert module.__all__, mod
        for name in module.__all__:
            assert hasattr(module, name), f"agentroute.{mod}.{name}"


def test_replay_function_survives_module_imports() -> None:
    """`agentroute.replay` stays the function after every agentroute module is imported.

    (A submodule named like a package attribute would replace it on import.)
    """
    import importlib
    import pkgutil

    for info in pkgutil.walk_packages(agentroute.__path__, "agentroute."):
        if ".cli" in info.name or info.name.endswith("__main__"):
            continue
        importlib.import_module(info.name)
    assert callable(agentroute.replay)
    assert agentroute.replay.__module__ == "agentroute._replay"
