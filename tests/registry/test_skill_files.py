"""SKILL.md loading: the real cards load whole; every malformed file fails loudly and atomically."""

from __future__ import annotations

from pathlib import Path

import pytest

import agentroute as ar
from agentroute.registry import parse_skill_file, read_skill_dir

GOOD = "---\nname: {id}\ndescription: {desc}\n---\n{body}"


def _write(root: Path, skill_id: str, text: str | bytes) -> Path:
    path = root / skill_id / "SKILL.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def _good(root: Path, skill_id: str, body: str = "# Title\n\nBody text.\n") -> Path:
    return _write(root, skill_id, GOOD.format(id=skill_id, desc=f"About {skill_id}.", body=body))


def _split_by_hand(path: Path) -> tuple[str, str]:
    """Independent parse: the front-matter text and the body after the closing `---`."""
    text = path.read_text(encoding="utf-8")
    assert text.startswith("---\n")
    front, body = text[4:].split("\n---\n", 1)
    return front, body


# -- the real cards ------------------------------------------------------------------------------


def test_real_skill_cards_load(skills_dir: Path) -> None:
    """Every card under `skills/` loads: at least 12, ids equal their directory names, sorted."""
    reg = ar.Registry()
    loaded = reg.load_skills(skills_dir)
    dirs = sorted(p.parent.name for p in skills_dir.glob("*/SKILL.md"))
    assert len(loaded) >= 12
    assert [s.id for s in loaded] == dirs
    assert list(reg.skills) == dirs
    for spec in loaded:
        assert spec.name == spec.id
        assert spec.description
        assert spec.source == str(skills_dir / spec.id / "SKILL.md")


def test_real_skill_bodies_are_kept_whole(skills_dir: Path) -> None:
    """Each body equals the file's text after the front matter, byte for byte (trimmed)."""
    for spec in read_skill_dir(skills_dir):
        _, body = _split_by_hand(skills_dir / spec.id / "SKILL.md")
        assert spec.body == body.strip("\n"), spec.id
        assert len(spec.body) > 500, f"{spec.id}: body looks truncated"
        assert "---\n" not in spec.body[:4]


def test_real_skill_metadata_is_parsed(skills_dir: Path) -> None:
    """Tags and version come from the front matter (refund-policy: [refunds, billing], 1.0)."""
    spec = parse_skill_file(skills_dir / "refund-policy" / "SKILL.md")
    assert spec.tags == ("refunds", "billing")
    assert spec.version == "1.0"
    assert spec.body.startswith("# Refund policy")


# -- good files in tmp_path ----------------------------------------------------------------------


def test_body_keeps_inner_separators_and_markdown(tmp_path: Path) -> None:
    """A `---` rule and code fences inside the body stay in the body."""
    body = "# T\n\ntext\n\n---\n\n```yaml\nname: not-front-matter\n```\n\nlast line\n"
    _good(tmp_path, "demo", body)
    (spec,) = read_skill_dir(tmp_path)
    assert spec.body == body.strip("\n")


def test_optional_fields_and_ignored_keys(tmp_path: Path) -> None:
    """A single-string tag becomes a tuple; metadata/license/allowed-tools are accepted."""
    _write(
        tmp_path,
        "demo",
        "---\nname: demo\ndescription: D.\ntags: billing\nversion: 2\nlicense: MIT\n"
        "metadata: {owner: x}\nallowed-tools: [Read]\n---\nBody\n",
    )
    (spec,) = read_skill_dir(tmp_path)
    assert spec.tags == ("billing",)
    assert spec.version == "2"


def test_utf8_bom_and_crlf_are_accepted(tmp_path: Path) -> None:
    """A UTF-8 BOM and Windows line endings do not break parsing."""
    _write(
        tmp_path, "demo", "\ufeff---\r\nname: demo\r\ndescription: D.\r\n---\r\nBody\r\n".encode()
    )
    (spec,) = read_skill_dir(tmp_path)
    assert spec.id == "demo"
    assert spec.body.strip() == "Body"


def test_hidden_and_underscore_directories_are_skipped(tmp_path: Path) -> None:
    """`_schema/` and `.git/`-like directories are not read, even if malformed."""
    _good(tmp_path, "demo")
    _write(tmp_path, "_private", "not a skill")
    _write(tmp_path, ".hidden", "not a skill")
    assert [s.id for s in read_skill_dir(tmp_path)] == ["demo"]


def test_nested_directories_are_found(tmp_path: Path) -> None:
    """Cards in nested folders are found recursively; ids are their own directory names."""
    _good(tmp_path / "billing", "refunds")
    _good(tmp_path / "shipping", "tracking")
    assert [s.id for s in read_skill_dir(tmp_path)] == ["refunds", "tracking"]


# -- malformed files -----------------------------------------------------------------------------

MALFORMED: dict[str, tuple[str | bytes, str]] = {
    "no-front-matter": ("# Just markdown\n", "no YAML front matter"),
    "empty-file": ("", "no YAML front matter"),
    "unclosed": ("---\nname: x\ndescription: D.\n# body\n", "front matter is not closed"),
    "bad-yaml": ("---\nname: [unclosed\ndescription: D.\n---\nbody\n", "not valid YAML"),
    "not-a-mapping": ("---\n- a\n- b\n---\nbody\n", "must be a mapping"),
    "name-differs": (
        "---\nname: other\ndescription: D.\n---\nbody\n",
        "differs from the directory",
    ),
    "no-name": ("---\ndescription: D.\n---\nbody\n", "has no 'name'"),
    "no-description": ("---\nname: {id}\n---\nbody\n", "has no 'description'"),
    "non-utf8": (b"---\nname: x\ndescription: caf\xe9\n---\nbody\n", "not UTF-8"),
    "unknown-field": (
        "---\nname: {id}\ndescription: D.\nauthor: me\n---\nbody\n",
        "unknown front-matter field",
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_file_raises_content_error_naming_it(tmp_path: Path, case: str) -> None:
    """Each malformed SKILL.md raises ContentError whose message and `.path` name the file."""
    text, expected = MALFORMED[case]
    if isinstance(text, str):
        text = text.replace("{id}", case)
    path = _write(tmp_path, case, text)
    with pytest.raises(ar.ContentError, match=expected) as info:
        parse_skill_file(path)
    assert info.value.path == str(path)
    assert str(info.value).startswith(f"{path}: ")


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_failed_load_registers_nothing(tmp_path: Path, case: str) -> None:
    """One bad card among good ones: load_skills raises and the registry stays empty."""
    text, expected = MALFORMED[case]
    if isinstance(text, str):
        text = text.replace("{id}", case)
    _good(tmp_path, "aaa-first")
    bad = _write(tmp_path, case, text)
    _good(tmp_path, "zzz-last")
    reg = ar.Registry()
    version = reg.version
    with pytest.raises(ar.ContentError, match=expected) as info:
        reg.load_skills(tmp_path)
    assert info.value.path == str(bad)
    assert dict(reg.skills) == {}
    assert reg.version == version


def test_duplicate_ids_across_nested_dirs(tmp_path: Path) -> None:
    """The same id in two nested folders → ContentError naming the second file and the first."""
    first = _good(tmp_path / "a", "refunds")
    second = _good(tmp_path / "b", "refunds")
    reg = ar.Registry()
    with pytest.raises(ar.ContentError, match="duplicate skill id 'refunds'") as info:
        reg.load_skills(tmp_path)
    assert info.value.path == str(second)
    assert str(first) in str(info.value)
    assert dict(reg.skills) == {}


def test_invalid_directory_name_is_a_content_error(tmp_path: Path) -> None:
    """A directory name that is not a valid id fails as ContentError naming the file."""
    path = _write(tmp_path, "bad id", "---\nname: bad id\ndescription: D.\n---\nbody\n")
    with pytest.raises(ar.ContentError, match="field 'id'") as info:
        parse_skill_file(path)
    assert info.value.path == str(path)


def test_missing_directory_is_a_content_error(tmp_path: Path) -> None:
    """load_skills on a path that is not a directory raises ContentError naming it."""
    missing = tmp_path / "nope"
    with pytest.raises(ar.ContentError, match="not a directory") as info:
        ar.Registry().load_skills(missing)
    assert info.value.path == str(missing)


def test_content_error_is_a_configuration_error(tmp_path: Path) -> None:
    """ContentError derives from ConfigurationError (one `except` catches both)."""
    path = _write(tmp_path, "x", "nothing")
    with pytest.raises(ar.ConfigurationError):
        parse_skill_file(path)


@pytest.mark.parametrize(
    ("front", "field"),
    [
        ("description: [a, b]", "description"),
        ("description:\n  en: Alpha", "description"),
        ("description: D.\ntags: {a: 1}", "tags"),
        ("description: D.\ntags: [ok, [nested]]", "tags.1"),
        ("description: D.\nversion: [1, 2]", "version"),
    ],
)
def test_front_matter_field_types_are_validated(tmp_path: Path, front: str, field: str) -> None:
    """A field of the wrong type is a ContentError naming the file and the field."""
    path = _write(tmp_path, "alpha", f"---\nname: alpha\n{front}\n---\nbody\n")
    with pytest.raises(ar.ContentError, match=f"field '{field}'") as info:
        parse_skill_file(path)
    assert str(path) in str(info.value)


def test_front_matter_scalars_keep_their_text(tmp_path: Path) -> None:
    """A one-word tag, a numeric or date version and a numeric name still load as text."""
    text = "---\nname: 123\ndescription: D.\ntags: billing\nversion: 2024-05-01\n---\nbody\n"
    spec = parse_skill_file(_write(tmp_path, "123", text))
    assert (spec.id, spec.tags, spec.version) == ("123", ("billing",), "2024-05-01")
    spec = parse_skill_file(_write(tmp_path, "beta", GOOD.format(id="beta", desc="D.", body="")))
    assert spec.version == "1"
