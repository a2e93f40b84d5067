"""Reading skills from `SKILL.md` files (YAML front matter + Markdown body)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentroute._yaml import safe_load
from agentroute.errors import ContentError
from agentroute.registry._specs import NAME_PATTERN, SkillSpec

__all__ = ["SkillFrontMatter", "parse_skill_file", "read_skill_dir"]

_FRONT_MATTER_KEYS = {"name", "description", "tags", "version"}


class SkillFrontMatter(BaseModel):
    """The YAML front matter of a `SKILL.md` file (the Agent Skills convention).

    The Markdown body after the front matter is the skill's body, kept whole.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(pattern=NAME_PATTERN)
    """The skill's id; must equal the name of the directory holding the file."""
    description: str = Field(min_length=1)
    """What the skill covers and when to use it. Routers read this."""
    tags: list[str] | str = Field(default_factory=list)
    """Labels, e.g. `[billing, refunds]`."""
    version: str | int | float = "1"
    """The author's version label."""
    metadata: dict[str, object] | None = None
    """Free metadata (accepted, not used)."""
    license: str | None = None
    """License of the card (accepted, not used)."""
    allowed_tools: str | list[str] | None = Field(default=None, alias="allowed-tools")
    """Agent Skills tool allow-list (accepted, not used)."""


def parse_skill_file(path: Path) -> SkillSpec:
    """Parse one `SKILL.md` into a `SkillSpec`.

    The skill's id is its directory name; the front matter's `name` must equal it (the Agent
    Skills convention). The Markdown body after the front matter is kept whole.

    Raises:
        ContentError: The file is not UTF-8, has no front matter, or a field is invalid.
    """
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ContentError(
            str(path), f"not UTF-8 (byte {exc.start}); save the file as UTF-8"
        ) from exc
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        raise ContentError(
            str(path),
            "no YAML front matter; start the file with '---', then 'name: <id>' and "
            "'description: ...', then '---', then the Markdown body",
        )
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    except StopIteration:
        raise ContentError(
            str(path), "front matter is not closed; add a line '---' after it"
        ) from None
    try:
        meta: Any = safe_load("".join(lines[1:end])) or {}
    except yaml.YAMLError as exc:
        raise ContentError(str(path), f"front matter is not valid YAML: {exc}") from exc
    if not isinstance(meta, dict):
        raise ContentError(str(path), "front matter must be a mapping of fields")
    unknown = set(meta) - _FRONT_MATTER_KEYS - {"metadata", "license", "allowed-tools"}
    if unknown:
        raise ContentError(
            str(path),
            f"unknown front-matter field(s) {sorted(unknown)}; allowed: "
            f"{sorted(_FRONT_MATTER_KEYS)} (plus metadata, license, allowed-tools, ignored)",
        )
    skill_id = path.parent.name
    name = meta.get("name")
    if name is None:
        raise ContentError(str(path), f"front matter has no 'name'; add 'name: {skill_id}'")
    if str(name) != skill_id:
        raise ContentError(
            str(path),
            f"front matter name {name!r} differs from the directory name {skill_id!r}; "
            "rename one so they match",
        )
    if not meta.get("description"):
        raise ContentError(
            str(path), "front matter has no 'description'; say what the skill is for"
        )
    front = _front_matter(path, meta)
    raw_tags = front.tags or ()
    tags = (raw_tags,) if isinstance(raw_tags, str) else tuple(raw_tags)
    try:
        return SkillSpec(
            id=skill_id,
            name=str(name),
            description=front.description,
            body="".join(lines[end + 1 :]).strip("\n"),
            tags=tuple(tags),
            version=str(front.version),
            source=str(path),
        )
    except ValidationError as exc:
        raise ContentError(str(path), _first_error(exc)) from exc


def _front_matter(path: Path, meta: dict[str, Any]) -> SkillFrontMatter:
    """`meta` validated as `SkillFrontMatter`; a field of the wrong type is a ContentError."""
    version = meta.get("version", "1")
    if isinstance(version, date):  # YAML reads `version: 2024-05-01` as a date
        version = version.isoformat()
    fields = {**meta, "name": str(meta["name"]), "version": version}
    try:
        return SkillFrontMatter.model_validate(fields)
    except ValidationError as exc:
        # The name equals the directory name (checked before); `SkillSpec` reports a bad id.
        if any(e["loc"][:1] != ("name",) for e in exc.errors()):
            raise ContentError(str(path), _first_error(exc, skip="name")) from exc
        return SkillFrontMatter.model_construct(**fields)


def read_skill_dir(root: Path) -> list[SkillSpec]:
    """Read every `*/SKILL.md` below `root` (recursively), sorted by id.

    Raises:
        ContentError: A file is malformed, or two files define the same id.
        ConfigurationError: `root` is not a directory.
    """
    if not root.is_dir():
        raise ContentError(str(root), "not a directory of skills (expected <id>/SKILL.md files)")
    skills: dict[str, SkillSpec] = {}
    for path in sorted(root.rglob("SKILL.md")):
        if any(part.startswith((".", "_")) for part in path.relative_to(root).parts[:-1]):
            continue
        spec = parse_skill_file(path)
        if spec.id in skills:
            raise ContentError(
                str(path), f"duplicate skill id {spec.id!r} (also in {skills[spec.id].source})"
            )
        skills[spec.id] = spec
    return [skills[k] for k in sorted(skills)]


def _first_error(exc: ValidationError, skip: str | None = None) -> str:
    err = next(e for e in exc.errors() if e["loc"][:1] != (skip,))
    # A union type (`tags: list[str] | str`) puts the branch it tried in the location
    # (`tags.list[str].0`): name the field and the item index, as the file spells them.
    loc = err["loc"]
    where = ".".join([str(p) for p in loc[:1]] + [str(p) for p in loc[1:] if isinstance(p, int)])
    got = f" (got {err['input']!r})" if "input" in err and len(repr(err["input"])) <= 80 else ""
    return f"field {where!r}: {err['msg']}{got}"
