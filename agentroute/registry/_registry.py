"""The `Registry`: an explicit, instance-bound catalogue of agents, skills, models and tasks."""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar, overload

from pydantic import ValidationError

from agentroute._hashing import content_hash
from agentroute.errors import ConfigurationError, did_you_mean
from agentroute.registry._graph import GraphSpec, read_graph_file
from agentroute.registry._skill_files import read_skill_dir
from agentroute.registry._specs import AgentSpec, ModelSpec, RetryPolicy, SkillSpec, TaskSpec

__all__ = ["AgentFunction", "Registry"]

AgentFunction = Callable[..., Any]
"""`def f(ctx: AgentContext, task: str) -> str | AgentResult`, sync or async."""

F = TypeVar("F", bound=AgentFunction)


def _items(values: Iterable[str]) -> tuple[str, ...]:
    # A bare string is one item, not a sequence of characters (`skills="refund-policy"`).
    return (values,) if isinstance(values, str) else tuple(values)


def _spec_error(kind: str, name: str, exc: ValidationError) -> ConfigurationError:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "spec"
    return ConfigurationError(f"{kind} {name!r}: field {where!r}: {err['msg']}")


class Registry:
    """What exists: agents (with their functions), skills, models and task types.

    A registry is explicit (there is no global one). Decorators bind to it and return the
    function unchanged. It may grow while routers use it: an agent registered after a router
    was built is routable on that router's next run. Registration is thread-safe.

    Example:
        ```python
        registry = Registry()
        registry.model("cheap", "openai/gpt-4o-mini", tier="cheap")

        @registry.agent(skills=["refund-policy"])
        async def billing(ctx, task):
            \"\"\"Answers questions about invoices, charges and refunds.\"\"\"
            return await ctx.complete(task)
        ```
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._agents: dict[str, AgentSpec] = {}
        self._functions: dict[str, AgentFunction] = {}
        self._skills: dict[str, SkillSpec] = {}
        self._models: dict[str, ModelSpec] = {}
        self._tasks: dict[str, TaskSpec] = {}
        self._version = 0
        self._hash_cache: tuple[int, str] | None = None

    # -- agents ------------------------------------------------------------------------------

    @overload
    def agent(self, fn: F, /) -> F: ...

    @overload
    def agent(
        self,
        fn: None = None,
        /,
        *,
        name: str | None = None,
        description: str | None = None,
        skills: Iterable[str] | None = None,
        tags: Iterable[str] = (),
        tier: str | None = None,
        model: str | None = None,
        stage: int | None = None,
        timeout_s: float | None = None,
        retry: RetryPolicy | None = None,
        examples: Iterable[str] = (),
    ) -> Callable[[F], F]: ...

    def agent(
        self,
        fn: F | None = None,
        /,
        *,
        name: str | None = None,
        description: str | None = None,
        skills: Iterable[str] | None = None,
        tags: Iterable[str] = (),
        tier: str | None = None,
        model: str | None = None,
        stage: int | None = None,
        timeout_s: float | None = None,
        retry: RetryPolicy | None = None,
        examples: Iterable[str] = (),
    ) -> F | Callable[[F], F]:
        """Register an agent function; usable bare (`@registry.agent`) or called.

        The function takes `(ctx: AgentContext, task: str)` and returns `str` or `AgentResult`;
        it may be sync (run in a worker thread) or async. It is returned unchanged.

        Args:
            fn: The function, when used bare.
            name: Registry name; defaults to the function's name.
            description: What the agent does; defaults to the docstring. Required one way or the
                other: routers read it.
            skills: Skill ids this agent may receive (`None` = any skill).
            tags: Free-form labels.
            tier: Default model tier when no model strategy is set.
            model: Default model name when no model strategy is set.
            stage: Stage in a layered agent graph.
            timeout_s: Wall-clock limit of one invocation.
            retry: Retries of the function when it raises (default: none).
            examples: Example requests for example-based routers.

        Raises:
            ConfigurationError: Duplicate name, missing description, wrong signature.
        """

        def register(func: F) -> F:
            self._register_agent(
                func,
                name=name,
                description=description,
                skills=skills,
                tags=tags,
                tier=tier,
                model=model,
                stage=stage,
                timeout_s=timeout_s,
                retry=retry,
                examples=examples,
            )
            return func

        if fn is not None:
            return register(fn)
        return register

    def _register_agent(
        self,
        func: AgentFunction,
        *,
        name: str | None,
        description: str | None,
        skills: Iterable[str] | None,
        tags: Iterable[str],
        tier: str | None,
        model: str | None,
        stage: int | None,
        timeout_s: float | None,
        retry: RetryPolicy | None,
        examples: Iterable[str],
    ) -> AgentSpec:
        if not callable(func):
            msg = f"@registry.agent needs a function, got {type(func).__name__}"
            raise ConfigurationError(msg)
        agent_name: str = name or str(getattr(func, "__name__", ""))
        _check_agent_signature(agent_name, func)
        desc = description if description is not None else inspect.getdoc(func)
        if not desc or not desc.strip():
            msg = (
                f"agent {agent_name!r} has no description: give the function a docstring "
                "saying what it handles, or pass description=... (routers read it)"
            )
            raise ConfigurationError(msg)
        fields: dict[str, Any] = {
            "name": agent_name,
            "description": desc,
            "skills": _items(skills) if skills is not None else None,
            "tags": _items(tags),
            "tier": tier,
            "model": model,
            "stage": stage,
            "timeout_s": timeout_s,
            "examples": _items(examples),
            "function": f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', '?')}",
        }
        if retry is not None:
            fields["retry"] = retry
        try:
            spec = AgentSpec(**fields)
        except ValidationError as exc:
            raise _spec_error("agent", agent_name, exc) from exc
        with self._lock:
            if spec.name in self._agents:
                msg = (
                    f"agent {spec.name!r} is already registered (by "
                    f"{self._agents[spec.name].function}); pass name=... to register another"
                )
                raise ConfigurationError(msg)
            self._agents[spec.name] = spec
            self._functions[spec.name] = func
            self._touch()
        return spec

    def add_agent(self, spec: AgentSpec, function: AgentFunction) -> AgentSpec:
        """Register an agent from a ready-made spec (for programmatic or loaded definitions).

        Raises:
            ConfigurationError: The name is taken or the function's signature is wrong.
        """
        _check_agent_signature(spec.name, function)
        with self._lock:
            if spec.name in self._agents:
                msg = f"agent {spec.name!r} is already registered"
                raise ConfigurationError(msg)
            self._agents[spec.name] = spec
            self._functions[spec.name] = function
            self._touch()
        return spec

    # -- models, skills, tasks ---------------------------------------------------------------

    def model(self, name: str, model: str, **fields: Any) -> ModelSpec:
        """Register a model by registry name and LiteLLM id.

        Args:
            name: Registry name (`"cheap"`).
            model: LiteLLM model id (`"openai/gpt-4o-mini"`).
            **fields: Other `ModelSpec` fields: `tier`, `input_price_per_mtok`,
                `output_price_per_mtok`, `fallbacks`, `retry`, `timeout_s`, `params`, ...

        Raises:
            ConfigurationError: Duplicate name or an invalid field.
        """
        try:
            spec = ModelSpec(name=name, model=model, **fields)
        except ValidationError as exc:
            raise _spec_error("model", name, exc) from exc
        with self._lock:
            if spec.name in self._models:
                first = self._models[spec.name].model
                msg = f"model {spec.name!r} is already registered (as {first})"
                raise ConfigurationError(msg)
            self._models[spec.name] = spec
            self._touch()
        return spec

    def skill(
        self,
        id: str,
        *,
        description: str,
        body: str = "",
        name: str | None = None,
        tags: Iterable[str] = (),
        version: str = "1",
    ) -> SkillSpec:
        """Register one skill defined in code.

        Raises:
            ConfigurationError: Duplicate id or an invalid field.
        """
        try:
            spec = SkillSpec(
                id=id,
                name=name or id,
                description=description,
                body=body,
                tags=_items(tags),
                version=version,
            )
        except ValidationError as exc:
            raise _spec_error("skill", id, exc) from exc
        self._add_skills([spec])
        return spec

    def load_skills(self, path: str | Path) -> list[SkillSpec]:
        """Load every `<id>/SKILL.md` below `path` and register them.

        All files are parsed before any is registered, so a malformed file registers nothing.

        Returns:
            The loaded skills, sorted by id.

        Raises:
            ContentError: A file is malformed (the message names it and the fix).
            ConfigurationError: A skill id is already registered.
        """
        specs = read_skill_dir(Path(path))
        self._add_skills(specs)
        return specs

    def _add_skills(self, specs: list[SkillSpec]) -> None:
        with self._lock:
            for spec in specs:
                if spec.id in self._skills:
                    where = self._skills[spec.id].source or "code"
                    msg = f"skill {spec.id!r} is already registered (from {where})"
                    raise ConfigurationError(msg)
            for spec in specs:
                self._skills[spec.id] = spec
            self._touch()

    def task(self, name: str, *, description: str = "", examples: Iterable[str] = ()) -> TaskSpec:
        """Register a task type of the routing taxonomy.

        Raises:
            ConfigurationError: Duplicate name or an invalid field.
        """
        try:
            spec = TaskSpec(name=name, description=description, examples=_items(examples))
        except ValidationError as exc:
            raise _spec_error("task", name, exc) from exc
        with self._lock:
            if spec.name in self._tasks:
                msg = f"task {spec.name!r} is already registered"
                raise ConfigurationError(msg)
            self._tasks[spec.name] = spec
            self._touch()
        return spec

    def load_graph(self, path: str | Path) -> GraphSpec:
        """Read a graph YAML file and check that every agent it names is registered.

        Build a router from it with `Router.from_graph(registry, spec)`.

        Raises:
            ContentError: The file is malformed.
            ConfigurationError: It names an unknown agent.
        """
        spec = read_graph_file(Path(path))
        for index, agent in enumerate(spec.agents):
            try:
                self.get_agent(agent)
            except ConfigurationError as exc:
                msg = f"{path}: agents[{index}]: {exc}"
                raise ConfigurationError(msg) from None
        return spec

    # -- lookups -----------------------------------------------------------------------------

    @property
    def agents(self) -> Mapping[str, AgentSpec]:
        """Registered agents by name (a read-only snapshot)."""
        with self._lock:
            return MappingProxyType(dict(self._agents))

    @property
    def skills(self) -> Mapping[str, SkillSpec]:
        """Registered skills by id (a read-only snapshot)."""
        with self._lock:
            return MappingProxyType(dict(self._skills))

    @property
    def models(self) -> Mapping[str, ModelSpec]:
        """Registered models by name (a read-only snapshot)."""
        with self._lock:
            return MappingProxyType(dict(self._models))

    @property
    def tasks(self) -> Mapping[str, TaskSpec]:
        """Registered task types by name (a read-only snapshot)."""
        with self._lock:
            return MappingProxyType(dict(self._tasks))

    def get_agent(self, name: str) -> AgentSpec:
        """Return the agent called `name`.

        Raises:
            ConfigurationError: Unknown name (with a did-you-mean hint).
        """
        try:
            return self._agents[name]
        except KeyError:
            msg = f"unknown agent {name!r}{did_you_mean(name, self._agents)}"
            raise ConfigurationError(msg) from None

    def agent_function(self, name: str) -> AgentFunction:
        """Return the function registered for agent `name`.

        Raises:
            ConfigurationError: Unknown name.
        """
        self.get_agent(name)
        return self._functions[name]

    def get_skill(self, skill_id: str) -> SkillSpec:
        """Return the skill with id `skill_id`.

        Raises:
            ConfigurationError: Unknown id (with a did-you-mean hint).
        """
        try:
            return self._skills[skill_id]
        except KeyError:
            msg = f"unknown skill {skill_id!r}{did_you_mean(skill_id, self._skills)}"
            raise ConfigurationError(msg) from None

    def get_model(self, name: str) -> ModelSpec:
        """Return the model called `name`.

        Raises:
            ConfigurationError: Unknown name (with a did-you-mean hint).
        """
        try:
            return self._models[name]
        except KeyError:
            msg = f"unknown model {name!r}{did_you_mean(name, self._models)}"
            raise ConfigurationError(msg) from None

    def models_in_tier(self, tier: str) -> list[ModelSpec]:
        """Return the models of a tier, in registration order (empty when none)."""
        return [m for m in self.models.values() if m.tier == tier]

    def skills_for(self, agent: str) -> list[SkillSpec]:
        """Return the skills an agent may receive: its declared ones, or all when undeclared."""
        spec = self.get_agent(agent)
        if spec.skills is None:
            return list(self.skills.values())
        return [self.get_skill(s) for s in spec.skills]

    # -- integrity ---------------------------------------------------------------------------

    def validate(self) -> None:
        """Check cross-references: agents' skills and models, models' fallbacks and tiers.

        Called by `Router.compile()`; call it yourself to fail fast.

        Raises:
            ConfigurationError: The first broken reference, named with a fix.
        """
        with self._lock:
            tiers = {m.tier for m in self._models.values()}
            for agent in self._agents.values():
                for skill in agent.skills or ():
                    if skill not in self._skills:
                        msg = (
                            f"agent {agent.name!r} lists unknown skill {skill!r}"
                            f"{did_you_mean(skill, self._skills)}"
                        )
                        raise ConfigurationError(msg)
                if agent.model is not None and agent.model not in self._models:
                    msg = (
                        f"agent {agent.name!r} names unknown model {agent.model!r}"
                        f"{did_you_mean(agent.model, self._models)}"
                    )
                    raise ConfigurationError(msg)
                if agent.tier is not None and agent.tier not in tiers:
                    msg = (
                        f"agent {agent.name!r} names tier {agent.tier!r} but no model has it"
                        f"{did_you_mean(agent.tier, tiers)}"
                    )
                    raise ConfigurationError(msg)
            for model in self._models.values():
                for fb in model.fallbacks:
                    if fb not in self._models:
                        msg = (
                            f"model {model.name!r} lists unknown fallback {fb!r}"
                            f"{did_you_mean(fb, self._models)}"
                        )
                        raise ConfigurationError(msg)

    @property
    def version(self) -> int:
        """A counter that grows with every registration (cheap change detection)."""
        return self._version

    def content_hash(self) -> str:
        """SHA-256 over every spec; recorded with each run to say which registry routed it."""
        with self._lock:
            if self._hash_cache is not None and self._hash_cache[0] == self._version:
                return self._hash_cache[1]
            digest = content_hash(
                {
                    "agents": [a.model_dump(mode="json") for a in self._agents.values()],
                    "skills": sorted(s.content_hash for s in self._skills.values()),
                    "models": [m.model_dump(mode="json") for m in self._models.values()],
                    "tasks": [t.model_dump(mode="json") for t in self._tasks.values()],
                }
            )
            self._hash_cache = (self._version, digest)
            return digest

    def _touch(self) -> None:
        self._version += 1

    def __repr__(self) -> str:
        return (
            f"Registry(agents={len(self._agents)}, skills={len(self._skills)}, "
            f"models={len(self._models)}, tasks={len(self._tasks)})"
        )


def _check_agent_signature(name: str, func: AgentFunction) -> None:
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):  # builtins without a signature: trust the caller
        return
    params = [
        p
        for p in sig.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
    ]
    if len(params) < 2 and not any(p.kind is p.VAR_POSITIONAL for p in params):
        msg = (
            f"agent {name!r} must accept (ctx, task): define it as "
            f"`def {name}(ctx: AgentContext, task: str) -> str`"
        )
        raise ConfigurationError(msg)
