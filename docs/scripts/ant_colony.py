"""An ant colony routes each request along a planner → solver path and learns which paths work.

Offline: a scripted model answers and a toy judge gates trajectories. Drop `client=` to call
real models (their API keys set), and use a PostgreSQL store URL when several processes should
learn into the same pheromone tables.
"""

import agentroute as ar
from agentroute.routing.colony import AntColony, Trajectory
from agentroute.testing import ScriptedModelClient

registry = ar.Registry()
registry.model(
    "cheap",
    "openai/gpt-4o-mini",
    tier="cheap",
    input_price_per_mtok=0.15,
    output_price_per_mtok=0.6,
)
registry.task("math", examples=["solve 2x + 3 = 7", "what is 17% of 240"])
registry.task("code", examples=["write a python function that ...", "fix this stack trace"])


@registry.agent(stage=0)
async def planner_small(ctx: ar.AgentContext, task: str) -> str:
    """Plans the steps of a request with a small model."""
    return await ctx.complete(f"plan briefly: {task}")


@registry.agent(stage=0)
async def planner_large(ctx: ar.AgentContext, task: str) -> str:
    """Plans the steps of a request in detail."""
    return await ctx.complete(f"plan in detail: {task}")


@registry.agent(stage=1)
async def solver_a(ctx: ar.AgentContext, task: str) -> str:
    """Carries out a plan, step by step."""
    return await ctx.complete(f"solve: {task}")


@registry.agent(stage=1)
async def solver_b(ctx: ar.AgentContext, task: str) -> str:
    """Carries out a plan and checks the result."""
    return await ctx.complete(f"solve and check: {task}")


def my_judge(traj: Trajectory) -> bool:
    """Accept a trajectory with a non-empty answer (use your own check, or an `LLMJudge`)."""
    return bool(traj.answer and traj.answer.strip())


colony = AntColony(judge=my_judge, sample_rate=1.0)  # or learn from router.feedback(...) only
router = ar.Router(
    registry,
    agent=colony,
    store="memory://",  # "postgresql://..." to share the tables between processes
    client=ScriptedModelClient([(r"solve", "x = 3")], default="1. isolate x 2. divide"),
)
result = router.run_sync("solve 3x - 1 = 8", seed=7)  # a seeded run samples the same path
print(result.status, result.agents)
router.close()
