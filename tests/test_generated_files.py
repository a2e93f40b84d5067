"""Generated content (JSON Schemas, schema.sql) must match what the code generates."""

from __future__ import annotations

from pathlib import Path

from agentroute._schemas import generated_files

ROOT = Path(__file__).resolve().parents[1]


def test_generated_files_are_fresh() -> None:
    """Each committed generated file equals the generator's output.

    Regenerate with `python -m agentroute._schemas` when a spec changes.
    """
    stale = [
        rel
        for rel, content in generated_files().items()
        if not (ROOT / rel).is_file() or (ROOT / rel).read_text(encoding="utf-8") != content
    ]
    assert stale == [], f"stale generated files: {stale}; run `python -m agentroute._schemas`"


def test_schema_sql_is_generated() -> None:
    """The SQL DDL is among the generated files, for both SQLite and PostgreSQL."""
    sql = generated_files()["stores/schema.sql"]
    assert "-- SQLite" in sql
    assert "-- PostgreSQL" in sql
    assert "agentroute_decisions" in sql


def test_skill_cards_validate_against_the_schema() -> None:
    """Every first-party SKILL.md's front matter fits the generated JSON Schema's model."""
    import yaml

    from agentroute.registry._skill_files import SkillFrontMatter

    cards = sorted((ROOT / "skills").glob("*/SKILL.md"))
    assert len(cards) >= 12
    for card in cards:
        text = card.read_text(encoding="utf-8")
        front = text.split("---", 2)[1]
        meta = SkillFrontMatter.model_validate(yaml.safe_load(front))
        assert meta.name == card.parent.name


def test_graphs_load_against_the_demo_registry() -> None:
    """Every first-party graph YAML validates and builds a router over the demo's agents."""
    from agentroute import Router
    from agentroute._demo import build_registry

    graphs = sorted((ROOT / "graphs").glob("*.yaml"))
    assert len(graphs) >= 2
    for path in graphs:
        router = Router.from_graph(build_registry(), path, store="memory://")
        assert router.compile() is router
