"""`LayeredGraph`: the agents of an ant colony as a layered, directed, acyclic graph (networkx)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from numbers import Integral

import networkx as nx

from agentroute.errors import ConfigurationError, did_you_mean
from agentroute.registry import Registry

__all__ = ["START", "Edge", "LayeredGraph", "edge_key"]

START = "__start__"
"""The virtual node every path leaves from; its edges lead to the first-stage agents."""

Edge = tuple[str, str]
"""`(source, destination)`; the source of a first-stage edge is `START`."""


def edge_key(edge: Edge) -> str:
    """The edge as one string, `"source->destination"` (how tables and traces name it)."""
    return f"{edge[0]}->{edge[1]}"


class LayeredGraph:
    """Agents placed on stages, with the transitions allowed between them.

    A path starts at the virtual `START` node, visits one agent per stage, and ends at an agent
    with no successor. Edges default to *every agent of stage s → every agent of stage s+1*;
    pass `edges` to restrict them (any listed agent pair replaces the default edges leaving its
    source). The graph must be acyclic, every stage must be reachable from `START`, and every
    agent must be reachable and able to reach the last stage, and every edge must lead from
    one stage to the next (`START` → stage 0, stage s → stage s+1).

    Args:
        stages: Agent → stage (0 = first). Stages must be 0, 1, ..., n-1 without gaps.
        edges: Allowed transitions as `(source, destination)` pairs or `"source->destination"`
            strings; `None` = all-to-next-stage.

    Raises:
        ConfigurationError: An unknown agent, a negative stage, a gap in the stages, a cycle,
            an edge that does not lead to the next stage, or an unreachable agent or stage (the
            message names it).
    """

    def __init__(
        self, stages: Mapping[str, int], edges: Iterable[Edge | str] | None = None
    ) -> None:
        if not stages:
            msg = "a layered agent graph needs at least one agent"
            raise ConfigurationError(msg)
        self.stages: dict[str, int] = dict(stages)
        bad = sorted(a for a, st in self.stages.items() if not isinstance(st, Integral) or st < 0)
        if bad:
            msg = (
                f"agent(s) {bad} have stage(s) {[self.stages[a] for a in bad]}; stages are "
                "whole numbers 0, 1, 2, ..."
            )
            raise ConfigurationError(msg)
        self.depth = max(self.stages.values()) + 1
        present = set(self.stages.values())
        missing = [s for s in range(self.depth) if s not in present]
        if missing:
            msg = (
                f"stage(s) {missing} of the agent graph have no agent, so every later stage is "
                "unreachable; number stages 0, 1, 2, ... without gaps"
            )
            raise ConfigurationError(msg)
        graph: nx.DiGraph = nx.DiGraph()
        graph.add_node(START)
        graph.add_nodes_from(self.stages)
        for agent, stage in self.stages.items():
            if stage == 0:
                graph.add_edge(START, agent)
        restricted = [self._parse(e) for e in edges] if edges is not None else None
        sources = {src for src, _ in restricted or ()}
        for agent, stage in self.stages.items():
            if agent in sources:
                continue
            for other, other_stage in self.stages.items():
                if other_stage == stage + 1:
                    graph.add_edge(agent, other)
        for src, dst in restricted or ():
            graph.add_edge(src, dst)
        self._check(graph)
        self.graph = graph
        self._succ: dict[str, tuple[str, ...]] = {
            node: tuple(sorted(graph.successors(node))) for node in graph.nodes
        }
        self.edges: tuple[Edge, ...] = tuple(sorted(graph.edges))

    def _parse(self, edge: Edge | str) -> Edge:
        if isinstance(edge, str):
            src, sep, dst = edge.partition("->")
            if not sep:
                msg = f"edge {edge!r} must be written 'source->destination'"
                raise ConfigurationError(msg)
            edge = (src.strip(), dst.strip())
        src, dst = edge
        for name in (src, dst):
            if name != START and name not in self.stages:
                msg = (
                    f"edge {src}->{dst} names unknown agent {name!r}"
                    f"{did_you_mean(name, list(self.stages))}"
                )
                raise ConfigurationError(msg)
        if dst == START:
            msg = f"edge {src}->{dst}: nothing may lead back to {START}"
            raise ConfigurationError(msg)
        return (src, dst)

    def _check(self, graph: nx.DiGraph) -> None:
        if not nx.is_directed_acyclic_graph(graph):
            cycle = " -> ".join(src for src, _ in nx.find_cycle(graph))
            msg = f"the agent graph has a cycle ({cycle}); paths must move forward through stages"
            raise ConfigurationError(msg)
        self._check_layers(graph)
        reachable = nx.descendants(graph, START)
        unreachable = sorted(set(self.stages) - reachable)
        if unreachable:
            dead = sorted(
                {self.stages[a] for a in unreachable} - {self.stages[a] for a in reachable}
            )
            where = f" (stage(s) {dead} cannot be reached at all)" if dead else ""
            msg = (
                f"agent(s) {unreachable} cannot be reached from the first stage{where}; add edges "
                "into them or drop the edge restriction"
            )
            raise ConfigurationError(msg)
        last = self.depth - 1
        stuck = sorted(
            a for a in self.stages if graph.out_degree(a) == 0 and self.stages[a] != last
        )
        if stuck:
            msg = (
                f"agent(s) {stuck} have no successor but are not on the last stage ({last}); "
                "paths through them could never complete — add edges out of them"
            )
            raise ConfigurationError(msg)

    def _check_layers(self, graph: nx.DiGraph) -> None:
        """Every edge must lead to the next stage: a path visits one agent per stage."""
        for src, dst in sorted(graph.edges):
            want = 0 if src == START else self.stages[src] + 1
            if self.stages[dst] != want:
                where = START if src == START else f"stage {self.stages[src]}"
                msg = (
                    f"edge {src}->{dst} leads from {where} to stage {self.stages[dst]}; every "
                    f"edge must lead to the next stage ({want}), as a path visits one agent per "
                    "stage — remove the edge or fix the stages"
                )
                raise ConfigurationError(msg)

    @classmethod
    def from_registry(
        cls,
        registry: Registry,
        agents: Sequence[str],
        *,
        stages: Mapping[str, int] | None = None,
        edges: Iterable[Edge | str] | None = None,
    ) -> LayeredGraph:
        """Build the graph of `agents` from their `AgentSpec.stage` (or an explicit `stages`).

        Agents with no stage anywhere form a one-stage graph (a pool). Agents that were given
        a stage by `stages` are the only nodes when `stages` is passed.

        Raises:
            ConfigurationError: Some agents have a stage and others none, or the graph is
                invalid (see the class).
        """
        if stages is not None:
            unknown = [a for a in stages if a not in registry.agents]
            if unknown:
                msg = (
                    f"ant colony stages name unknown agent {unknown[0]!r}"
                    f"{did_you_mean(unknown[0], list(registry.agents))}"
                )
                raise ConfigurationError(msg)
            return cls(stages, edges)
        specs = [registry.get_agent(a) for a in agents]
        staged = {s.name: s.stage for s in specs if s.stage is not None}
        if not staged:
            return cls({s.name: 0 for s in specs}, edges)
        unstaged = [s.name for s in specs if s.stage is None]
        if unstaged:
            msg = (
                f"agent(s) {unstaged} declare no stage while others do; give every agent of the "
                "ant colony a stage (`@registry.agent(stage=0)`) or pass `stages=` to AntColony"
            )
            raise ConfigurationError(msg)
        return cls({name: int(stage) for name, stage in staged.items()}, edges)

    def successors(self, node: str) -> tuple[str, ...]:
        """Agents a path at `node` (an agent, or `START`) may move to next."""
        return self._succ.get(node, ())

    @property
    def agents(self) -> tuple[str, ...]:
        """Every agent of the graph, by stage then name."""
        return tuple(sorted(self.stages, key=lambda a: (self.stages[a], a)))

    def describe(self) -> dict[str, object]:
        """JSON-ready summary: stages and edges."""
        return {"stages": dict(self.stages), "edges": [edge_key(e) for e in self.edges]}
