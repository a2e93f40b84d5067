"""Traces in SQLite: list, read, verify; learned state with versions."""

import tempfile
from pathlib import Path

import agentroute as ar
from agentroute.errors import StateConflict
from agentroute.testing import ScriptedModelClient

registry = ar.Registry()
registry.model("cheap", "openai/gpt-4o-mini", input_price_per_mtok=0.15, output_price_per_mtok=0.6)


@registry.agent
async def assistant(ctx: ar.AgentContext, task: str) -> str:
    """Answers anything."""
    return await ctx.complete(task)


db = Path(tempfile.mkdtemp()) / "runs.db"
store = ar.open_store(f"sqlite:///{db}")  # an SqlTraceStore, in WAL mode
router = ar.Router(
    registry, agent=ar.Static("assistant"), store=store, client=ScriptedModelClient(default="Hi!")
)
result = router.run_sync("Hello")

for run in store.list_runs(limit=5):
    print(run.run_id == result.run_id, run.status, run.steps, run.task)

trace = store.get_run(result.run_id)
print([record.kind for record in trace.records])
report = store.verify(result.run_id)
print(report.ok, report.records, report.complete, report.problems)

# Learned state: each write appends a version; a stale writer gets StateConflict.
v1 = store.put_state("colony/support", {"billing": 0.5}, expected_version=None)
v2 = store.put_state("colony/support", {"billing": 0.7}, expected_version=v1.version)
try:
    store.put_state("colony/support", {"billing": 0.1}, expected_version=v1.version)
except StateConflict as exc:
    print("conflict:", exc)
print(store.get_state("colony/support").version, store.get_state("colony/support", 1).value)
store.close()
