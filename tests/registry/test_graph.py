"""Graph YAML: `registry.load_graph` validates the file and the agents it names."""

from __future__ import annotations

from pathlib import Path

import pytest

import agentroute as ar

VALID = """\
name: support-desk
description: Rules first, general as the default.
agents: [billing, shipping, general]
router:
  agent:
    strategy: rules
    params:
      rules:
        - name: refunds
          when: {keywords: [refund, charged]}
          choose: [billing]
      default: [general]
  model:
    strategy: static
    params: {choices: [cheap]}
store: "memory://"
budget_usd: 0.05
limits: {max_steps: 4, loop_limit: 2}
"""


def _write(tmp_path: Path, text: str, name: str = "graph.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_graph_loads(registry: ar.Registry, tmp_path: Path) -> None:
    """A valid file gives a GraphSpec with every field, and `source` set to the path."""
    path = _write(tmp_path, VALID)
    spec = registry.load_graph(path)
    assert isinstance(spec, ar.GraphSpec)
    assert spec.name == "support-desk"
    assert spec.agents == ("billing", "shipping", "general")
    assert spec.router.agent.strategy == "rules"
    assert spec.router.agent.params["default"] == ["general"]
    assert spec.router.model is not None
    assert spec.router.model.params == {"choices": ["cheap"]}
    assert spec.router.skills is None
    assert spec.store == "memory://"
    assert spec.budget_usd == 0.05
    assert (spec.limits.max_steps, spec.limits.loop_limit) == (4, 2)
    assert spec.source == str(path)


def test_string_path_is_accepted(registry: ar.Registry, tmp_path: Path) -> None:
    """`load_graph` takes a str as well as a Path."""
    path = _write(tmp_path, VALID)
    assert registry.load_graph(str(path)).name == "support-desk"


def test_unknown_agent_is_named_with_did_you_mean_and_the_path(
    registry: ar.Registry, tmp_path: Path
) -> None:
    """An agent the registry lacks → ConfigurationError with the file, the name and a hint."""
    path = _write(tmp_path, VALID.replace("[billing, shipping, general]", "[billing, shiping]"))
    with pytest.raises(ar.ConfigurationError) as info:
        registry.load_graph(path)
    message = str(info.value)
    assert "unknown agent 'shiping' — did you mean 'shipping'?" in message
    assert str(path) in message


def test_malformed_yaml_is_a_content_error(registry: ar.Registry, tmp_path: Path) -> None:
    """YAML that does not parse → ContentError naming the file."""
    path = _write(tmp_path, "name: x\nrouter: {agent: [unclosed\n")
    with pytest.raises(ar.ContentError, match="not valid YAML") as info:
        registry.load_graph(path)
    assert info.value.path == str(path)
    assert "UTF-8" not in str(info.value)  # the file is valid UTF-8; only its YAML is wrong


def test_a_graph_file_that_is_not_utf8_says_so(registry: ar.Registry, tmp_path: Path) -> None:
    """Latin-1 bytes → ContentError saying the file is not UTF-8 text (not a YAML error)."""
    path = tmp_path / "latin.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ar.ContentError, match="not UTF-8 text"):
        registry.load_graph(path)


def test_non_mapping_is_a_content_error(registry: ar.Registry, tmp_path: Path) -> None:
    """A YAML list (or scalar) instead of a mapping → ContentError naming the file."""
    path = _write(tmp_path, "- a\n- b\n")
    with pytest.raises(ar.ContentError, match="must be a YAML mapping") as info:
        registry.load_graph(path)
    assert info.value.path == str(path)


@pytest.mark.parametrize(
    ("mutation", "field"),
    [
        (("store:", "stroe:"), "stroe"),
        (("strategy: static", "stratgy: static"), "router.model.stratgy"),
        (("max_steps: 4", "max_steps: 0"), "limits.max_steps"),
        (("budget_usd: 0.05", "budget_usd: -1"), "budget_usd"),
        (("name: support-desk", "name: support desk!"), "name"),
    ],
    ids=["unknown-top-field", "unknown-slot-field", "bad-limit", "bad-budget", "bad-name"],
)
def test_wrong_field_is_a_content_error_naming_it(
    registry: ar.Registry, tmp_path: Path, mutation: tuple[str, str], field: str
) -> None:
    """A wrong or misspelt field → ContentError naming the file and the field's path."""
    path = _write(tmp_path, VALID.replace(*mutation))
    with pytest.raises(ar.ContentError) as info:
        registry.load_graph(path)
    assert info.value.path == str(path)
    assert field in str(info.value)


def test_missing_router_is_a_content_error(registry: ar.Registry, tmp_path: Path) -> None:
    """A file without `router` → ContentError naming the missing field."""
    path = _write(tmp_path, "name: g\n")
    with pytest.raises(ar.ContentError, match="router") as info:
        registry.load_graph(path)
    assert info.value.path == str(path)


def test_missing_file_is_a_content_error(registry: ar.Registry, tmp_path: Path) -> None:
    """A path that does not exist → ContentError naming it."""
    path = tmp_path / "nope.yaml"
    with pytest.raises(ar.ContentError, match="no such file") as info:
        registry.load_graph(path)
    assert info.value.path == str(path)


def test_non_utf8_file_is_a_content_error(registry: ar.Registry, tmp_path: Path) -> None:
    """Bytes that are not UTF-8 → ContentError naming the file."""
    path = tmp_path / "g.yaml"
    path.write_bytes(b"name: caf\xe9\nrouter: {agent: {strategy: static}}\n")
    with pytest.raises(ar.ContentError) as info:
        registry.load_graph(path)
    assert info.value.path == str(path)


def test_empty_agents_means_every_agent(registry: ar.Registry, tmp_path: Path) -> None:
    """Without `agents`, the layout restricts nothing (an empty tuple)."""
    path = _write(
        tmp_path, "name: g\nrouter: {agent: {strategy: static, params: {choices: [general]}}}\n"
    )
    spec = registry.load_graph(path)
    assert spec.agents == ()
    assert spec.limits == ar.registry.LimitsSpec()
