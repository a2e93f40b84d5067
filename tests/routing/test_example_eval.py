"""Offline agent-routing evaluation: robust file reading and the metric definitions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agentroute.errors import ConfigurationError
from agentroute.routing._agent_eval import (
    build_registry,
    read_agents,
    read_queries,
    routing_metrics,
)


def test_reading_tolerates_odd_but_valid_input(tmp_path: Path) -> None:
    """Blank lines, a BOM, string golds, null golds, odd names and missing descriptions load."""
    agents = tmp_path / "a.jsonl"
    agents.write_text(
        '\ufeff{"name": "Book Flight!", "examples": ["fly me"]}\n\n'
        '{"name": "book_flight", "description": "flights"}\n'
        '{"name": "Book Flight!", "examples": "to rome"}\n',
        encoding="utf-8",
    )
    records = read_agents(agents)
    assert [r.name for r in records] == ["Book Flight!", "book_flight"]
    assert records[0].examples == ("fly me", "to rome")
    registry, names = build_registry(records)
    assert names["Book Flight!"] in registry.agents
    assert registry.agents[names["Book Flight!"]].description == "Book Flight!"
    queries = tmp_path / "q.jsonl"
    queries.write_text(
        '{"text": "a", "gold": "book_flight"}\n{"text": "b", "gold": null}\n{"text": "c"}\n'
    )
    assert [q.gold for q in read_queries(queries)] == [("book_flight",), (), ()]


def test_bad_lines_name_the_file_and_line(tmp_path: Path) -> None:
    """Malformed JSON or a missing field fails with `file:line`."""
    bad = tmp_path / "q.jsonl"
    bad.write_text('{"text": "ok", "gold": []}\n{"gold": []}\n')
    with pytest.raises(ConfigurationError, match=r"q\.jsonl:2"):
        read_queries(bad)
    bad.write_text("{not json\n")
    with pytest.raises(ConfigurationError, match=r"q\.jsonl:1"):
        read_agents(bad)
    with pytest.raises(ConfigurationError, match="cannot read"):
        read_agents(tmp_path / "missing.jsonl")


def test_metrics_follow_their_definitions() -> None:
    """Accuracy counts gold-in-chosen and declined out-of-scope; set P/R/F1 per request."""
    golds = [["a"], ["a", "b"], ["c"], [], []]
    chosen = [["a"], ["a"], [], [], ["b"]]
    m = routing_metrics(golds, chosen, [1.0, 2.0, 3.0, 4.0, 5.0])
    assert m.accuracy == pytest.approx(3 / 5)
    assert m.in_scope_accuracy == pytest.approx(2 / 3)
    assert m.recall == pytest.approx((1 + 0.5 + 0 + 1 + 0) / 5)
    assert m.precision == pytest.approx((1 + 1 + 0 + 1 + 0) / 5)
    assert m.oos_recall == pytest.approx(1 / 2)
    assert m.oos_precision == pytest.approx(1 / 2)
    assert m.p50_ms == 3.0
    data = m.as_dict()
    assert set(data) >= {
        "accuracy",
        "precision",
        "recall",
        "f1",
        "oos_precision",
        "oos_recall",
        "p50_ms",
        "queries",
    }
    empty = routing_metrics([["a"]], [["a"]])
    assert (empty.oos_precision, empty.oos_recall) == (0.0, 0.0)


def test_p95_is_the_nearest_rank_not_the_maximum() -> None:
    """With 20 latencies, p95 is the 19th smallest (nearest rank), not the largest."""
    m = routing_metrics([["a"]] * 20, [["a"]] * 20, latencies_ms=[float(i) for i in range(1, 21)])
    assert m.p95_ms == 19.0
    assert m.p50_ms == 10.5


def test_a_gold_agent_missing_from_the_agents_file_is_an_error(tmp_path: Path) -> None:
    """A typo in a gold label fails with `file:line` and a suggestion, instead of scoring 0.

    The command passes the agents file's names; without them nothing is checked.
    """
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"text": "a", "gold": ["billing"]}\n{"text": "b", "gold": ["biling"]}\n')
    with pytest.raises(ConfigurationError, match=r"q\.jsonl:2: gold agent 'biling'.*'billing'"):
        read_queries(queries, {"billing", "shipping"})
    assert len(read_queries(queries)) == 2
    assert len(read_queries(queries, {"billing", "biling"})) == 2


class _LazyStrategy:
    """Routes to `billing`; its first decision is slow, as a lazily loaded model's would be."""

    name = "lazy"

    def __init__(self) -> None:
        self.calls = 0

    async def route(self, ctx: Any) -> Any:
        import asyncio

        from agentroute.routing import RouteDecision

        self.calls += 1
        if self.calls == 1:
            await asyncio.sleep(0.5)
        return RouteDecision.to("billing", reason="lazy")


async def test_offline_latency_excludes_the_first_lazy_load() -> None:
    """An offline strategy gets one untimed warm-up decision, so p95 is not the model load.

    With `complete` (an LLM strategy) there is no warm-up: it would spend a model call.
    """
    from agentroute.routing._agent_eval import AgentRecord, QueryRecord, evaluate_strategy

    registry, names = build_registry([AgentRecord("billing", "Invoices and refunds.")])
    queries = [QueryRecord(f"refund {i}", ("billing",)) for i in range(3)]
    offline = _LazyStrategy()
    metrics, decisions = await evaluate_strategy(offline, registry, queries, names)
    assert offline.calls == 4
    assert len(decisions) == 3
    assert metrics.p95_ms < 250
    assert metrics.accuracy == 1.0

    async def complete(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("not called by this strategy")

    llm = _LazyStrategy()
    metrics, _ = await evaluate_strategy(llm, registry, queries, names, complete=complete)
    assert llm.calls == 3
    assert metrics.p95_ms >= 400
