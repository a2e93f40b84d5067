"""Content files use YAML 1.2 booleans, so `on:` in a graph is a key, not `True`."""

from __future__ import annotations

from pathlib import Path

from agentroute import Router
from agentroute._demo import build_registry
from agentroute._yaml import safe_load


def test_yaml_11_booleans_stay_strings() -> None:
    """`on`, `off`, `yes`, `no` are strings; `true`/`false` are still booleans."""
    data = safe_load("on: previous\noff: 1\na: yes\nb: no\nc: true\nd: False\n")
    assert data == {"on": "previous", "off": 1, "a": "yes", "b": "no", "c": True, "d": False}


def test_graph_signal_on_previous_is_honoured(tmp_path: Path) -> None:
    """An unquoted `on: previous` in graph YAML makes the signal read the previous answer."""
    graph = tmp_path / "g.yaml"
    graph.write_text(
        "name: g\n"
        "agents: [triage, billing, general]\n"
        "router:\n"
        "  agent:\n"
        "    strategy: first-match\n"
        "    params:\n"
        "      strategies:\n"
        "        - strategy: rules\n"
        "          params:\n"
        "            rules:\n"
        "              - {name: first, when: {not: {regex: '\\S', on: previous}},"
        " choose: [triage], then: route}\n"
        "        - strategy: rules\n"
        "          params:\n"
        "            rules:\n"
        "              - {name: billing, when: {keywords: [billing], on: previous},"
        " choose: [billing]}\n"
        "            default: [general]\n",
        encoding="utf-8",
    )
    from agentroute._demo import offline_client

    router = Router.from_graph(build_registry(), graph, store="memory://", client=offline_client())
    result = router.run_sync("I need a refund for my invoice")
    assert result.agents == (("triage",), ("billing",))
